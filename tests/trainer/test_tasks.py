"""trainer/tasks.py: the task file format, few-shot prompts and the answer rules, with numbers
computed by hand."""

import json
import math
from decimal import Decimal

import pytest

from pipelines.errors import UserError
from tests.support.tiny_lm import FEWSHOT_FILES, TASK_FILES
from trainer import tasks
from trainer.tasks import FreeForm, MultipleChoice


def test_characters_normalization_by_hand():
    # " cat": 4 characters, -3.0 -> -0.75; " horse": 6 characters, -4.0 -> -0.6667.
    lls, choices = [-3.0, -4.0], [" cat", " horse"]
    assert tasks.choice_scores(lls, choices, "chars") == [-0.75, pytest.approx(-4 / 6)]
    assert tasks.best(tasks.choice_scores(lls, choices, "chars")) == 1
    assert tasks.best(tasks.choice_scores(lls, choices, "none")) == 0  # -3.0 > -4.0


def test_answer_normalization_by_hand():
    # log P(c|context) - log P(c|"Answer:"): " no" -5.0 - (-1.0) = -4.0, " yes" -6.0 - (-4.0)
    # = -2.0: " no" is likelier after the context, but far likelier after "Answer:" alone.
    lls, given_answer = [-5.0, -6.0], [-1.0, -4.0]
    scores = tasks.choice_scores(lls, [" no", " yes"], "answer", given_answer)
    assert scores == [-4.0, -2.0]
    assert tasks.best(scores) == 1
    assert tasks.best(tasks.choice_scores(lls, [" no", " yes"], "none")) == 0
    with pytest.raises(ValueError):
        tasks.choice_scores(lls, [" no", " yes"], "answer")


def test_the_first_of_equal_scores_wins():
    assert tasks.best([-1.0, -0.5, -0.5]) == 1


def test_exact_match_normalization_by_hand():
    assert tasks.normalize_answer("  The Eiffel-Tower,  in PARIS!\n") == "eiffeltower in paris"
    assert tasks.normalize_answer("An apple a day") == "apple day"
    assert tasks.normalize_answer("Theatre") == "theatre"  # articles are whole words only
    assert tasks.exact_match("the  Pacific.", ["Pacific Ocean", "pacific"])
    assert not tasks.exact_match("Pacific Ocean floor", ["Pacific Ocean"])


def test_short_answer_stops_at_the_line_then_a_final_dot_or_comma():
    assert tasks.short_answer(" Frank Sinatra, the singer.\nQ: Who else?") == "Frank Sinatra"
    assert tasks.short_answer(" Paris.") == "Paris"
    assert tasks.short_answer(" 3.5 million people") == "3.5 million people"
    assert tasks.short_answer("\nParis") == ""


def test_final_number_by_hand():
    assert tasks.final_number("She had 1,234.50 dollars, so the answer is 18.") == Decimal(18)
    assert tasks.final_number("It was 4 - 9 = -5 degrees.\n#### -5") == Decimal(-5)
    assert tasks.final_number("$1,380 pages") == Decimal(1380)
    assert tasks.final_number("version x2 of 1.5.3") is None
    assert tasks.final_number("no number here") is None
    assert tasks.number_match("so they made 240.00", ["They made $240.\n#### 240"])
    assert not tasks.number_match("so 24", ["#### 240"])
    assert not tasks.number_match("none at all", ["#### 240"])


def test_standard_error_by_hand():
    assert tasks.standard_error(0.5, 5) == 0.25  # sqrt(0.25 / 4)
    assert tasks.standard_error(0.8, 101) == pytest.approx(0.04)  # sqrt(0.16 / 100)
    assert tasks.standard_error(1.0, 1) == 0.0


def test_the_sample_task_files_read():
    for path in [*TASK_FILES.values(), *FEWSHOT_FILES.values()]:
        examples = tasks.read_task_file(str(path))
        assert len(examples) >= 3, path
    piqa = tasks.read_task_file(str(TASK_FILES["piqa"]))
    assert piqa[0].id == "piqa-0" and piqa[0].gold == 0 and len(piqa[0].choices) == 2
    assert isinstance(tasks.read_task_file(str(TASK_FILES["gsm8k"]))[0], FreeForm)


@pytest.mark.parametrize(
    "line, problem",
    [
        ('{"context": "a", "choices": [" b"], "gold": 0', "not JSON (Expecting ',' delimiter)"),
        ('["context"]', "a line is a JSON object"),
        ('{"context": "a", "choices": [" b", " c"]}', "`gold` is missing"),
        ('{"context": "a", "choices": [" b", " c"], "gold": 2}', "`gold` is 2, not an index"),
        ('{"context": "a", "choices": [" b", " c"], "gold": true}', "`gold` is not an integer"),
        ('{"context": "a", "choices": " b", "gold": 0}', "`choices` is not a non-empty list"),
        ('{"context": "a", "choices": [" b", ""], "gold": 0}', "`choices` holds an empty string"),
        ('{"question": "q?"}', "`answers` is missing"),
        ('{"question": "q?", "answers": []}', "`answers` is not a non-empty list"),
        ('{"text": "q?"}', "neither multiple choice (context, choices, gold) nor free form"),
        ('{"question": "q?", "answers": ["a"]}', "the file's first example is multiple choice"),
    ],
)
def test_a_bad_line_is_named_with_its_file_and_line(tmp_path, line, problem):
    path = tmp_path / "task.jsonl"
    good = json.dumps({"context": "Question: x?\nAnswer:", "choices": [" y", " z"], "gold": 1})
    path.write_text(f"{good}\n\n{line}\n")
    with pytest.raises(UserError) as err:
        tasks.read_task_file(str(path))
    assert str(err.value).startswith(f"{path}:3: {problem}")
    assert "\n" not in str(err.value)


def test_unreadable_files_are_one_line(tmp_path):
    with pytest.raises(UserError, match=r"nope.jsonl: task file not found$"):
        tasks.read_task_file(str(tmp_path / "nope.jsonl"))
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(UserError, match=r"empty.jsonl: no examples"):
        tasks.read_task_file(str(tmp_path / "empty.jsonl"))
    (tmp_path / "latin1.jsonl").write_bytes(b'{"question": "q", "answers": ["a"]}\n{"q": "\xe9"}\n')
    with pytest.raises(UserError, match=r"latin1.jsonl:2: not UTF-8 text$"):
        tasks.read_task_file(str(tmp_path / "latin1.jsonl"))


def test_scoring_defaults_by_task_name_and_kind():
    mc = [MultipleChoice("c", [" a", " b"], 0)]
    ff = [FreeForm("q", ["a"])]
    assert tasks.default_scoring("boolq", mc) == "answer"
    assert tasks.default_scoring("OpenBookQA-test", mc) == "answer"
    assert tasks.default_scoring("piqa", mc) == "chars"
    assert tasks.default_scoring("gsm8k", ff) == "number"
    assert tasks.default_scoring("triviaqa", ff) == "exact"
    assert tasks.default_scoring("gsm8k", mc) == "chars"  # a name that does not fit its kind
    with pytest.raises(UserError, match="task piqa is multiple choice: its scoring is one of"):
        tasks.check_scoring("piqa", mc, "number")


def test_few_shot_prompts_are_fixed_by_seed_and_never_the_example_itself():
    train = [MultipleChoice(f"Q{i}:", [" a", " b"], i % 2) for i in range(6)]
    target = train[2]
    drawn = tasks.draw_shots(train, 3, 0, "t", 7, target)
    assert drawn == tasks.draw_shots(train, 3, 0, "t", 7, target)
    assert target not in drawn and len(set(map(id, drawn))) == 3
    assert any(tasks.draw_shots(train, 3, seed, "t", 7, target) != drawn for seed in range(1, 5))
    assert tasks.draw_shots(train, 9, 0, "t", 7, target) != []  # all it has: 5
    assert len(tasks.draw_shots(train, 9, 0, "t", 7, target)) == 5
    prompt = tasks.choice_context(MultipleChoice("Q:", [" x"], 0), drawn[:2])
    expected = f"{drawn[0].context}{drawn[0].choices[drawn[0].gold]}\n\n"
    assert prompt == expected + f"{drawn[1].context}{drawn[1].choices[drawn[1].gold]}\n\nQ:"


def test_free_form_prompts_by_scoring():
    shot = FreeForm("Capital of Peru?", ["Lima", "lima"])
    target = FreeForm("Capital of Chile?", ["Santiago"])
    assert tasks.question_prompt(target, [shot], "exact") == (
        "Answer these questions:\nQ: Capital of Peru?\nA: Lima\nQ: Capital of Chile?\nA:"
    )
    worked = FreeForm("2 + 3?", ["2 + 3 = 5.\n#### 5"])
    assert tasks.question_prompt(target, [worked], "number") == (
        "Question: 2 + 3?\nAnswer: 2 + 3 = 5.\n#### 5\n\nQuestion: Capital of Chile?\nAnswer:"
    )
    assert tasks.stop_text("exact") == "\n" and tasks.stop_text("number") == "\n\n"


def test_eval_settings_check_names():
    settings = tasks.EvalSettings(tasks={"piqa": "p.jsonl"}, shots={"piqa": 2})
    assert settings.shots_for("piqa") == 2
    assert tasks.EvalSettings(tasks={"a": "a.jsonl"}, shots=5).shots_for("a") == 5
    with pytest.raises(ValueError, match="fewshot: no task 'arc' in tasks"):
        tasks.EvalSettings(tasks={"piqa": "p.jsonl"}, fewshot={"arc": "a.jsonl"})
    with pytest.raises(ValueError, match="scoring.piqa: 'char' is none of"):
        tasks.EvalSettings(tasks={"piqa": "p.jsonl"}, scoring={"piqa": "char"})
    with pytest.raises(ValueError, match="task name 'a b'"):
        tasks.EvalSettings(tasks={"a b": "p.jsonl"})
    assert math.isclose(tasks.standard_error(0.5, 2), 0.5)
