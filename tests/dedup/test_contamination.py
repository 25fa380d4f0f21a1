"""Normalization, n-gram matching and task files of dedup/contamination.py, without Beam."""

import json
import random
import string

import pytest

from dedup.contamination import EvalIndex, TaskFileError, normalize, normalized_bytes, read_task


@pytest.mark.parametrize(
    "text, words",
    [
        ("Hello,   WORLD!\n\nIt’s  “quoted” — fine.", "hello world it s quoted fine"),
        ("Naïve café RÉSUMÉ", "naive cafe resume"),
        ("Nai\u0308ve cafe\u0301 RE\u0301SUME\u0301", "naive cafe resume"),  # decomposed
        ("Ｆｕｌｌ-width ﬁnal x²", "full width final x2"),  # compatibility forms
        ("Tom&#39;s &quot;cat&quot;&nbsp;sat<br/>on the <b>mat</b>.", "tom s cat sat on the mat"),
        ("de\u00adcon\u200btamination", "decontamination"),  # soft hyphen, zero-width space
        ("snake_case and kebab-case", "snake case and kebab case"),
        ("Question: Why?\nAnswer: So. Q: x A : y", "why so x y"),  # prompt labels
        ("Note: the ratio 3:4, subquestion: b", "note the ratio 3 4 subquestion b"),
        ("ΣΊΣΥΦΟΣ σίσυφος, Straße", "σισυφοσ σισυφοσ, strasse".replace(",", "")),
        ("", ""),
        (" \n\t ", ""),
    ],
)
def test_normalize(text, words):
    assert normalize(text) == words


def test_the_ascii_path_gives_what_the_unicode_path_gives():
    rng = random.Random(7)
    alphabet = string.printable + "&;<>#"
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80)))
        # An em dash is a separator: the text with one goes the non-ASCII way.
        assert normalized_bytes(text) == normalized_bytes(text + " \u2014"), repr(text)


def task(name, *records):
    data = "".join(json.dumps(r) + "\n" for r in records).encode()
    return read_task(name, f"{name}.jsonl", data)


BALL = (
    "A ball is thrown straight up into the air. At the very top of its path, what is the "
    "vertical speed of the ball?"
)
MC = {"id": "q1", "context": BALL, "choices": ["zero", "its starting speed"], "gold": 0}
SHORT = {"question": "Who painted the ceiling of the Sistine Chapel?", "answers": ["Michelangelo"]}
TINY = {"id": "tiny", "question": "What is H2O?", "answers": ["water"]}


@pytest.fixture(scope="module")
def index():
    examples = task("physics", MC) + task("art", SHORT, TINY)
    return EvalIndex.from_bytes(EvalIndex.build(examples, 13, 8).to_bytes())


def test_a_13_gram_matches_and_a_12_gram_does_not(index):
    thirteen = "Quiz: A BALL is thrown straight\nup into the air; at the very top, sir."
    twelve = "Quiz: A BALL is thrown straight\nup into the air; at the very."
    found, missed = index.check([thirteen, twelve])
    assert (found.task, found.example) == ("physics", "q1")
    assert found.ngram == "a ball is thrown straight up into the air at the very top"
    assert found.examples == (0,)
    assert missed is None


def test_a_short_example_matches_whole_and_a_tiny_one_not_at_all(index):
    assert index.tasks["art"].examples == 2 and index.tasks["art"].too_short == 1
    whole = index.first_match("“Who painted the ceiling of the Sistine Chapel?” Michelangelo!")
    assert whole is not None and whole.example == "1"  # no id: its line number
    assert whole.ngram == "who painted the ceiling of the sistine chapel michelangelo"
    assert index.first_match("Who painted the ceiling of the Sistine Chapel? Raphael") is None
    assert index.first_match("What is H2O? Water. What is H2O? Water.") is None


def test_windows_never_span_two_documents(index):
    words = normalize(BALL).split()
    first, second = " ".join(words[:7]), " ".join(words[7:14])
    assert index.check([first, second]) == [None, None]
    assert index.check([f"{first} {second}"])[0] is not None


def test_the_first_match_is_the_earliest_and_every_example_is_counted(index):
    text = f"Who painted the ceiling of the Sistine Chapel? Michelangelo. Then: {BALL} zero"
    found = index.first_match(text)
    assert (found.task, found.example) == ("art", "1")
    assert found.examples == (0, 1)  # q1 (physics) and line 1 (art)


def test_options_pasted_with_letters_and_prompt_labels_are_found():
    record = {
        "id": "arc-0",
        "context": "Question: Which of these is a source of light?\nAnswer:",
        "choices": [" the Moon", " the Sun", " a mirror"],
        "gold": 1,
    }
    index = EvalIndex.build(task("arc", record), 13, 8)
    assert index.first_match("Which of these is a source of light? The Sun.").example == "arc-0"
    listed = "Which of these is a source of light?\n(A) the Moon (B) the Sun (C) a mirror"
    assert index.first_match(listed).example == "arc-0"
    assert index.first_match("Q: Which of these is a source of light? A: The Sun").example
    assert index.first_match("Which of these is a source of light? A mirror.") is None


def test_examples_that_share_an_ngram_are_all_found():
    passage = "The Danube flows through ten countries on its way from the Black Forest to the sea."
    records = [
        {"id": "a", "context": passage + " Question: is it long?", "choices": ["yes"], "gold": 0},
        {"id": "b", "context": passage + " Question: is it old?", "choices": ["no"], "gold": 0},
    ]
    index = EvalIndex.build(task("boolq", *records), 13, 8)
    found = index.first_match(f"Travel notes. {passage}")
    assert found.example == "a" and found.examples == (0, 1)


@pytest.mark.parametrize(
    "line, problem",
    [
        (b"{not json", "not valid JSON (Expecting property name enclosed in double quotes)"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"text": "hello"}', 'neither multiple choice ("context", "choices", "gold") nor free'),
        (b'{"context": "c", "choices": ["a", "b"], "gold": 2}', '"gold" must be the index'),
        (b'{"context": "c", "choices": ["a"], "gold": true}', '"gold" must be the index'),
        (b'{"context": "c", "choices": [], "gold": 0}', '"choices" must be a non-empty list'),
        (b'{"context": 3, "choices": ["a"], "gold": 0}', '"context" must be a string'),
        (b'{"question": "q", "answers": "a"}', '"answers" must be a non-empty list'),
        (b'{"question": "q", "answers": ["a"], "id": [1]}', '"id" must be a string or an integer'),
        (b'{"question": "caf\xe9", "answers": ["a"]}', "not UTF-8 text"),
    ],
)
def test_a_bad_line_is_named_with_its_file_and_number(line, problem):
    good = b'{"question": "q", "answers": ["a"]}\n'
    with pytest.raises(TaskFileError) as caught:
        read_task("t", "tasks/t.jsonl", good + b"\n" + good + line + b"\n" + good)
    assert str(caught.value).startswith(f"tasks/t.jsonl:4: {problem}")
    assert "\n" not in str(caught.value)


def test_a_task_file_needs_examples_and_may_have_blank_lines():
    with pytest.raises(TaskFileError, match=r"^t\.jsonl: no examples$"):
        read_task("t", "t.jsonl", b"\n \n")
    examples = read_task("t", "t.jsonl", b'\n{"question": "q", "answers": ["a"]}\n\n')
    assert [e.id for e in examples] == ["2"]  # named by its line in the file
