"""Evaluation examples for benchmarks/decontamination.py, written for this project in the shapes
of common benchmarks: ARC/MMLU-like multiple choice, TriviaQA-like questions, GSM8K-like word
problems (generated from templates, with worked answers) and LAMBADA-like last-word
completions of the sample corpora's paragraphs (samples/texts.py, in four languages).

`tasks()` gives {task name: [example records]} in the format of the task files
(docs/eval.md): multiple choice {"id", "context", "choices", "gold"}, free form {"id",
"question", "answers"}.
"""

from __future__ import annotations

import random

from samples.texts import ENGLISH, FRENCH, GERMAN, SPANISH

# (question, choices, index of the right one)
SCIENCE = [
    (
        "Which gas do green plants take in from the air to make their food?",
        ["oxygen", "nitrogen", "carbon dioxide", "helium"],
        2,
    ),
    (
        "What is the main job of the red blood cells in the human body?",
        ["fighting infections", "carrying oxygen", "clotting the blood", "digesting fat"],
        1,
    ),
    (
        "Which layer of the Earth lies directly beneath the crust?",
        ["the inner core", "the outer core", "the mantle", "the atmosphere"],
        2,
    ),
    (
        "A student heats a pot of water until it boils. Which change of state takes place?",
        ["liquid to gas", "solid to liquid", "gas to liquid", "liquid to solid"],
        0,
    ),
    (
        "Which of these animals is a mammal that lays eggs?",
        ["the bat", "the platypus", "the dolphin", "the penguin"],
        1,
    ),
    (
        "Why does the Moon appear to change its shape over the course of a month?",
        [
            "clouds cover parts of it",
            "the Earth's shadow moves across it",
            "we see different parts of its sunlit half",
            "it grows and shrinks",
        ],
        2,
    ),
    (
        "Which simple machine is a ramp that makes it easier to raise a heavy load?",
        ["a lever", "a pulley", "an inclined plane", "a wheel and axle"],
        2,
    ),
    (
        "What kind of energy does a stretched rubber band store before it is released?",
        ["elastic potential energy", "thermal energy", "nuclear energy", "sound energy"],
        0,
    ),
    (
        "Which part of a plant cell carries out photosynthesis?",
        ["the nucleus", "the chloroplast", "the cell wall", "the vacuole"],
        1,
    ),
    (
        "Which planet in our solar system has the shortest year?",
        ["Venus", "Mercury", "Mars", "Neptune"],
        1,
    ),
    (
        "What happens to most metals when they are heated in a flame for a few minutes?",
        ["they contract", "they expand", "they become magnetic", "they lose mass"],
        1,
    ),
    (
        "A scientist wants to find out whether fertilizer makes bean plants grow taller. "
        "Which of these should stay the same for every plant?",
        [
            "the amount of fertilizer",
            "the amount of water",
            "the height of each plant",
            "the number of plants that died",
        ],
        1,
    ),
    (
        "Which organ of the human body filters waste from the blood and produces urine?",
        ["the liver", "the kidney", "the stomach", "the pancreas"],
        1,
    ),
    (
        "Which process breaks rocks down into smaller pieces without moving them away?",
        ["erosion", "weathering", "deposition", "compaction"],
        1,
    ),
    (
        "What is the name of the force that pulls objects toward the centre of the Earth?",
        ["friction", "magnetism", "gravity", "tension"],
        2,
    ),
    (
        "An ice cube is left on a kitchen table on a warm day. What happens to its mass "
        "when it has completely melted?",
        ["it increases", "it decreases", "it stays the same", "it becomes zero"],
        2,
    ),
    (
        "Which of these is a renewable source of energy that can be used to make electricity?",
        ["coal", "natural gas", "wind", "oil"],
        2,
    ),
    (
        "In a food chain, which organisms make their own food from sunlight?",
        ["consumers", "producers", "decomposers", "predators"],
        1,
    ),
    (
        "Sound travels fastest through which of the following materials?",
        ["air", "water", "steel", "a vacuum"],
        2,
    ),
    (
        "Which property of a mineral describes how easily it can be scratched?",
        ["luster", "hardness", "streak", "cleavage"],
        1,
    ),
    (
        "What causes the seasons on Earth to change during the year?",
        [
            "the distance between the Earth and the Sun",
            "the tilt of the Earth's axis as it orbits the Sun",
            "the rotation of the Moon",
            "changes in the Sun's brightness",
        ],
        1,
    ),
    (
        "Which blood vessels carry blood away from the heart to the rest of the body?",
        ["veins", "arteries", "capillaries", "lymph vessels"],
        1,
    ),
    (
        "A compass needle points north because it lines up with which of these?",
        [
            "the Earth's magnetic field",
            "the rotation of the Earth",
            "the position of the Sun",
            "the pull of the Moon",
        ],
        0,
    ),
    (
        "Which characteristic is passed from parents to their offspring through genes?",
        [
            "a scar from an injury",
            "the colour of the eyes",
            "the ability to ride a bicycle",
            "a short haircut",
        ],
        1,
    ),
    (
        "Which of the following is a chemical change rather than a physical change?",
        ["cutting paper", "melting butter", "burning wood", "dissolving sugar in water"],
        2,
    ),
    (
        "The boiling point of pure water at sea level is closest to which temperature?",
        ["0 degrees Celsius", "37 degrees Celsius", "100 degrees Celsius", "212 degrees Celsius"],
        2,
    ),
    (
        "Which type of rock forms when lava cools and hardens on the surface of the Earth?",
        ["sedimentary rock", "metamorphic rock", "igneous rock", "limestone"],
        2,
    ),
    (
        "What do we call the amount of matter in an object, measured in kilograms?",
        ["weight", "volume", "mass", "density"],
        2,
    ),
    (
        "Which body system is made up of the brain, the spinal cord and the nerves?",
        [
            "the digestive system",
            "the nervous system",
            "the skeletal system",
            "the circulatory system",
        ],
        1,
    ),
    (
        "Why do astronauts on the Moon weigh less than they do on the Earth?",
        [
            "the Moon has no air",
            "the Moon's gravity is weaker",
            "they lose mass in space",
            "the Moon spins faster",
        ],
        1,
    ),
]
HUMANITIES = [
    (
        "In which year did the First World War come to an end with the signing of the armistice?",
        ["1914", "1916", "1918", "1921"],
        2,
    ),
    (
        "Which document, sealed by King John of England in 1215, limited the power of the king?",
        ["the Bill of Rights", "the Magna Carta", "the Domesday Book", "the Act of Union"],
        1,
    ),
    (
        "Which ancient civilisation built the pyramids at Giza on the west bank of the Nile?",
        ["the Romans", "the Egyptians", "the Aztecs", "the Persians"],
        1,
    ),
    (
        "Who was the first person to walk on the surface of the Moon in July 1969?",
        ["Yuri Gagarin", "Buzz Aldrin", "Neil Armstrong", "John Glenn"],
        2,
    ),
    (
        "Which economic term describes a general rise in prices across an economy over time?",
        ["deflation", "inflation", "recession", "depreciation"],
        1,
    ),
    (
        "The Renaissance, a revival of art and learning, began in which country in the "
        "fourteenth century?",
        ["France", "England", "Italy", "Spain"],
        2,
    ),
    (
        "Which branch of government in the United States is responsible for making laws?",
        ["the executive branch", "the judicial branch", "the legislative branch", "the military"],
        2,
    ),
    (
        "What was the main purpose of the Silk Road that linked China with the Mediterranean?",
        [
            "religious pilgrimage",
            "trade between east and west",
            "military conquest",
            "the spread of printing",
        ],
        1,
    ),
    (
        "Which philosopher wrote The Republic, a dialogue about justice and the ideal city?",
        ["Aristotle", "Plato", "Socrates", "Cicero"],
        1,
    ),
    (
        "In economics, what happens to the demand for a normal good when incomes rise?",
        ["demand rises", "demand falls", "demand stays the same", "supply falls"],
        0,
    ),
    (
        "Which city was divided by a wall between 1961 and 1989 during the Cold War?",
        ["Vienna", "Berlin", "Warsaw", "Prague"],
        1,
    ),
    (
        "What was the name of the ship that carried the Pilgrims to North America in 1620?",
        ["the Santa Maria", "the Mayflower", "the Endeavour", "the Beagle"],
        1,
    ),
    (
        "Which invention of the fifteenth century made books far cheaper to produce in Europe?",
        ["the telescope", "the printing press", "the steam engine", "the compass"],
        1,
    ),
    (
        "Who composed the Ninth Symphony whose final movement sets Schiller's Ode to Joy?",
        ["Mozart", "Bach", "Beethoven", "Haydn"],
        2,
    ),
    (
        "Which empire was ruled from Constantinople for more than a thousand years?",
        [
            "the Mongol Empire",
            "the Byzantine Empire",
            "the Holy Roman Empire",
            "the Ottoman Empire",
        ],
        1,
    ),
    (
        "A government that spends more money than it collects in taxes in a year has what?",
        ["a trade surplus", "a budget deficit", "a balanced budget", "a monopoly"],
        1,
    ),
    (
        "Which river was the centre of the ancient civilisation of Mesopotamia together with "
        "the Tigris?",
        ["the Nile", "the Indus", "the Euphrates", "the Jordan"],
        2,
    ),
    (
        "Which movement of the nineteenth century fought to give women the right to vote?",
        [
            "the temperance movement",
            "the suffrage movement",
            "the labour movement",
            "the romantic movement",
        ],
        1,
    ),
    (
        "Which language was spoken by the ancient Romans and used by scholars for centuries?",
        ["Greek", "Latin", "Hebrew", "Aramaic"],
        1,
    ),
    (
        "What is the name of the economic system in which the means of production are "
        "privately owned and operated for profit?",
        ["feudalism", "socialism", "capitalism", "mercantilism"],
        2,
    ),
]
COMPUTING = [
    (
        "Which data structure removes elements in the reverse order from the one in which they "
        "were added?",
        ["a queue", "a stack", "a heap", "a linked list"],
        1,
    ),
    (
        "What is the time complexity of binary search on a sorted array of n elements?",
        ["O(1)", "O(log n)", "O(n)", "O(n log n)"],
        1,
    ),
    (
        "In a relational database, which key uniquely identifies each row of a table?",
        ["a foreign key", "a primary key", "a composite index", "a cursor"],
        1,
    ),
    (
        "Which protocol is used to translate human-readable domain names into IP addresses?",
        ["HTTP", "DNS", "SMTP", "FTP"],
        1,
    ),
    ("How many distinct values can be represented with eight bits?", ["8", "64", "255", "256"], 3),
    (
        "Which sorting algorithm repeatedly divides the list in half, sorts each half and "
        "merges the results?",
        ["bubble sort", "insertion sort", "merge sort", "selection sort"],
        2,
    ),
    (
        "In object-oriented programming, what is the name for a class that inherits from "
        "another class?",
        ["a superclass", "a subclass", "an interface", "a module"],
        1,
    ),
    (
        "Which part of a computer carries out the instructions of a program?",
        ["the hard disk", "the central processing unit", "the monitor", "the network card"],
        1,
    ),
    (
        "What does a compiler do with a program written in a high-level language?",
        [
            "it translates it into machine code",
            "it stores it on disk",
            "it encrypts it for the network",
            "it deletes unused files",
        ],
        0,
    ),
    (
        "Which of these is the name of a version control system created for the Linux kernel?",
        ["Subversion", "Git", "Mercurial", "CVS"],
        1,
    ),
]
# (question, accepted answers)
TRIVIA = [
    ("Which planet is known as the red planet because of the iron oxide on its surface?", ["Mars"]),
    (
        "What is the capital city of Australia, chosen as a compromise between Sydney and "
        "Melbourne?",
        ["Canberra"],
    ),
    ("Who wrote the novel Nineteen Eighty-Four, published in 1949?", ["George Orwell"]),
    ("Which element has the chemical symbol Au and is prized for its colour?", ["gold"]),
    (
        "What is the longest river in Africa, flowing north into the Mediterranean Sea?",
        ["the Nile", "Nile"],
    ),
    ("Which Italian city is famous for its canals and its gondolas?", ["Venice"]),
    (
        "How many players does a football team have on the pitch at the start of a match?",
        ["eleven", "11"],
    ),
    (
        "Who painted the Mona Lisa, now displayed in the Louvre in Paris?",
        ["Leonardo da Vinci", "Leonardo"],
    ),
    ("Which ocean lies between Africa and Australia?", ["the Indian Ocean"]),
    (
        "What is the name of the largest desert in the world that is not a polar desert?",
        ["the Sahara", "Sahara"],
    ),
    (
        "Which composer wrote the opera The Magic Flute in the last year of his life?",
        ["Wolfgang Amadeus Mozart", "Mozart"],
    ),
    (
        "In which country would you find the ancient city of Machu Picchu high in the Andes?",
        ["Peru"],
    ),
    (
        "Which scientist formulated the three laws of motion and the law of universal gravitation?",
        ["Isaac Newton", "Newton"],
    ),
    ("What is the hardest natural substance known, often used in cutting tools?", ["diamond"]),
    ("Which city hosted the Summer Olympic Games in the year 2000?", ["Sydney"]),
    ("What is the smallest prime number that is greater than twenty?", ["23"]),
    ("Which organ in the human body produces insulin?", ["the pancreas", "pancreas"]),
    (
        "Who was the first woman to win a Nobel Prize, for her work on radioactivity?",
        ["Marie Curie"],
    ),
    (
        "What is the name of the galaxy that contains our solar system?",
        ["the Milky Way", "Milky Way"],
    ),
    (
        "Which mountain range separates Europe from Asia in Russia?",
        ["the Ural Mountains", "the Urals"],
    ),
    (
        "Which author created the detective Sherlock Holmes and his friend Doctor Watson?",
        ["Arthur Conan Doyle"],
    ),
    ("What is the freezing point of water on the Fahrenheit scale?", ["32 degrees", "32"]),
    ("Which country gave the Statue of Liberty to the United States as a gift?", ["France"]),
    ("What is the largest mammal that has ever lived on Earth?", ["the blue whale"]),
    ("Which gas makes up about seventy-eight percent of the Earth's atmosphere?", ["nitrogen"]),
    ("In which year did the Berlin Wall fall, opening the border between East and West?", ["1989"]),
    ("Which playwright wrote Romeo and Juliet and Hamlet?", ["William Shakespeare", "Shakespeare"]),
    (
        "What is the name of the imaginary line that divides the Earth into the northern and "
        "southern hemispheres?",
        ["the equator"],
    ),
    (
        "Which famous ship sank on its maiden voyage in April 1912 after hitting an iceberg?",
        ["the Titanic", "RMS Titanic"],
    ),
    ("How many bones are there in the body of an adult human being?", ["206"]),
    ("Which language has the most native speakers in the world?", ["Mandarin Chinese", "Mandarin"]),
    ("Who developed the theory of general relativity, published in 1915?", ["Albert Einstein"]),
    (
        "What is the capital of Canada, located on the border between Ontario and Quebec?",
        ["Ottawa"],
    ),
    (
        "Which instrument has eighty-eight keys, fifty-two white and thirty-six black?",
        ["the piano", "piano"],
    ),
    ("Which chemical element is the most abundant in the universe?", ["hydrogen"]),
    (
        "Which artist cut off part of his own ear and painted The Starry Night?",
        ["Vincent van Gogh", "van Gogh"],
    ),
    ("What is the currency of Japan, used since 1871?", ["the yen", "yen"]),
    (
        "Which explorer led the first expedition to sail around the world, though he died on "
        "the way?",
        ["Ferdinand Magellan", "Magellan"],
    ),
    ("What do bees collect from flowers to make honey?", ["nectar"]),
    (
        "Which is the tallest mountain in the world measured from sea level?",
        ["Mount Everest", "Everest"],
    ),
    (
        "Which novel by Herman Melville follows the hunt for a white whale?",
        ["Moby-Dick", "Moby Dick"],
    ),
    (
        "What is the name of the process by which a caterpillar turns into a butterfly?",
        ["metamorphosis"],
    ),
    ("Which country is both the largest by area and spans eleven time zones?", ["Russia"]),
    ("Which vitamin does the human skin make when it is exposed to sunlight?", ["vitamin D"]),
    ("Who was the Greek god of the sea, brother of Zeus and Hades?", ["Poseidon"]),
    (
        "What is the name of the unit of electrical resistance, named after a German physicist?",
        ["the ohm", "ohm"],
    ),
    (
        "Which war was fought between the North and the South of the United States from 1861 "
        "to 1865?",
        ["the American Civil War", "the Civil War"],
    ),
    (
        "Which bird is the national symbol of the United States and appears on its seal?",
        ["the bald eagle"],
    ),
    ("What is the main ingredient of guacamole, a dip from Mexico?", ["avocado"]),
    (
        "Which scientist is known for the theory of evolution by natural selection, described "
        "in On the Origin of Species?",
        ["Charles Darwin"],
    ),
]
NAMES = [
    "Ana",
    "Ben",
    "Chloe",
    "Dev",
    "Elena",
    "Farid",
    "Grace",
    "Hugo",
    "Ines",
    "Jonas",
    "Kemal",
    "Lena",
    "Mateo",
    "Nadia",
    "Omar",
    "Priya",
    "Quentin",
    "Rosa",
    "Sami",
    "Tara",
]
ITEMS = ["apples", "pencils", "stickers", "marbles", "cookies", "books", "stamps", "shells"]


def _word_problem(rng: random.Random, number: int) -> dict:
    """A GSM8K-like problem with a worked answer ending in '#### <answer>'."""
    name, other = rng.sample(NAMES, 2)
    item = rng.choice(ITEMS)
    a, b, c = rng.randint(3, 40), rng.randint(2, 12), rng.randint(2, 9)
    kind = number % 5
    if kind == 0:
        question = (
            f"{name} has {a} {item}. {other} gives {name} {b} more {item}, and then "
            f"{name} gives away {c} of them to friends at school. How many {item} "
            f"does {name} have now?"
        )
        steps, answer = f"{a} + {b} = {a + b}, and {a + b} - {c} = {a + b - c}.", a + b - c
    elif kind == 1:
        question = (
            f"A shop sells {item} in packs of {b}. {name} buys {c} packs for a class "
            f"party and already had {a} {item} at home. How many {item} does {name} "
            f"have altogether?"
        )
        steps, answer = f"{b} * {c} = {b * c}, and {b * c} + {a} = {b * c + a}.", b * c + a
    elif kind == 2:
        total = b * c * 2
        question = (
            f"{name} and {other} share {total} {item} equally between them. {name} "
            f"then splits his share into {c} equal piles. How many {item} are in "
            f"each pile?"
        )
        steps, answer = f"{total} / 2 = {total // 2}, and {total // 2} / {c} = {b}.", b
    elif kind == 3:
        price = rng.randint(2, 9)
        question = (
            f"{name} earns {a} dollars a week walking dogs. Each week {name} spends "
            f"{price} dollars on snacks and saves the rest. How many dollars will "
            f"{name} have saved after {c} weeks?"
        )
        weekly = a - price if a > price else a + price
        if a <= price:
            question = question.replace("spends", "also gets").replace(
                "saves the rest", "saves everything"
            )
        steps, answer = (
            f"Each week {name} saves {weekly}, so {weekly} * {c} = {weekly * c}.",
            (weekly * c),
        )
    else:
        question = (
            f"A train leaves the station at {b} o'clock and travels for {c} hours at "
            f"{a + 30} kilometres per hour. How many kilometres does the train travel "
            f"on this trip?"
        )
        steps, answer = f"{a + 30} * {c} = {(a + 30) * c}.", (a + 30) * c
    return {"id": f"math-{number}", "question": question, "answers": [f"{steps}\n#### {answer}"]}


def _last_word(paragraphs: list[str], task: str) -> list[dict]:
    """LAMBADA-like: a paragraph without its last word; the word is the answer."""
    out = []
    for i, text in enumerate(paragraphs):
        body, _, last = text.rstrip(".!?").rpartition(" ")
        out.append({"id": f"{task}-{i}", "question": body, "answers": [last]})
    return out


def _multiple_choice(task: str, rows: list[tuple[str, list[str], int]]) -> list[dict]:
    return [
        {
            "id": f"{task}-{i}",
            "context": f"Question: {question}\nAnswer:",
            "choices": [f" {c}" for c in choices],
            "gold": gold,
        }
        for i, (question, choices, gold) in enumerate(rows)
    ]


def tasks(seed: int = 2026) -> dict[str, list[dict]]:
    rng = random.Random(seed)
    english = [p for paragraphs in ENGLISH.values() for p in paragraphs]
    others = [*FRENCH, *GERMAN, *SPANISH]
    return {
        "science": _multiple_choice("science", SCIENCE),
        "humanities": _multiple_choice("humanities", HUMANITIES),
        "computing": _multiple_choice("computing", COMPUTING),
        "trivia": [
            {"id": f"trivia-{i}", "question": q, "answers": a} for i, (q, a) in enumerate(TRIVIA)
        ],
        "math": [_word_problem(rng, i) for i in range(200)],
        "lambada": _last_word(english, "lambada") + _last_word(others, "lambada-x"),
    }
