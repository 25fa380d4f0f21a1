"""Original text for the sample corpora (written for this project; free to reuse).

Paragraphs are grouped by topic so that generated documents read coherently. Some pages are
deliberately bad (navigation menus, keyword lists, lorem ipsum) so the filters have work.
"""

ENGLISH = {
    "bread": [
        "Baking bread at home starts with four ingredients: flour, water, salt and yeast. The "
        "proportions matter more than the brand of flour, and most bakers weigh everything "
        "instead of using cups. A dough with about seventy percent water is easy to shape and "
        "still gives an open crumb.",
        "Kneading develops gluten, the elastic network that traps the gas made by the yeast. "
        "If you do not want to knead, a long cold rise in the refrigerator does much of the same "
        "work. The dough becomes smooth on its own, and the flavour improves because the yeast "
        "has more time to ferment the sugars.",
        "A hot oven and steam give the loaf a crisp, shiny crust. Many people bake in a heavy "
        "covered pot for the first twenty minutes, which keeps the steam close to the dough, and "
        "then remove the lid so the crust can brown. Let the bread cool completely before you "
        "cut it, or the inside will feel gummy.",
        "Sourdough replaces commercial yeast with a starter, a mixture of flour and water that "
        "wild yeast and bacteria have colonised. Feeding the starter every day keeps it active. "
        "The bacteria produce lactic and acetic acids, which is why sourdough tastes tangy and "
        "keeps fresh longer than ordinary bread.",
    ],
    "rivers": [
        "A river carries water, sediment and dissolved minerals from high ground to the sea. "
        "Near its source the channel is usually steep and narrow, and the water cuts down into "
        "the rock. Further downstream the slope decreases, the valley widens and the river "
        "begins to meander across a broad flood plain.",
        "Floods are a natural part of a river's life. When heavy rain falls on a catchment that "
        "is already saturated, the water cannot soak into the ground and runs straight into "
        "streams. Engineers build levees and storage basins to protect towns, but wetlands that "
        "absorb the extra water are often cheaper and better for wildlife.",
        "The delta at a river's mouth forms where the current slows and drops its sediment. "
        "Over centuries the deposits build new land, and the main channel splits into many "
        "smaller ones. Deltas are fertile and densely populated, which makes them vulnerable to "
        "storms and to the slow rise of the sea.",
        "Measuring the flow of a river is harder than it sounds. Hydrologists record the water "
        "level at a gauging station and convert it to discharge with a rating curve, which they "
        "check by measuring the velocity across the channel several times a year.",
    ],
    "computing": [
        "A compiler translates a program written in a high-level language into instructions a "
        "processor can execute. It first parses the source text into a tree, checks that the "
        "types are consistent, and then applies many optimisations before it emits machine "
        "code for the target architecture.",
        "Caches exist because memory is much slower than the processor. When a program reads a "
        "value, the hardware also loads the neighbouring bytes into a small, fast cache, hoping "
        "they will be needed soon. Code that walks through arrays in order therefore runs far "
        "faster than code that jumps around at random.",
        "Version control lets a team work on the same code without overwriting each other's "
        "changes. Every commit records a snapshot of the project together with a message that "
        "explains why the change was made. Good messages save hours when someone later tries to "
        "understand an old decision.",
        "Testing is cheaper than debugging. A small test that checks one behaviour and fails "
        "with a clear message points straight at the problem, while a bug found in production "
        "may take days to reproduce. Tests also make it safe to improve code that nobody dares "
        "to touch.",
        "Distributed systems fail in partial and surprising ways. A network link may drop "
        "messages for a few seconds, a disk may fill up, or one machine may run slower than the "
        "others. Robust software retries with backoff, records what it has finished, and can "
        "resume after a crash without repeating work.",
    ],
    "astronomy": [
        "The Moon always shows the same face to the Earth because its rotation is locked to its "
        "orbit. Tidal forces slowed its spin long ago until one rotation took exactly as long "
        "as one trip around our planet. The same process is gradually lengthening the Earth's "
        "day by a tiny amount each century.",
        "Stars are born in cold clouds of gas and dust. When a dense region collapses under its "
        "own gravity, it heats up until hydrogen begins to fuse into helium at the centre. The "
        "mass of the new star decides almost everything about its future, including how long it "
        "will shine and how it will die.",
        "A telescope is a machine for collecting light. The larger its mirror, the fainter the "
        "objects it can see and the finer the detail it can resolve. Modern observatories are "
        "built on high mountains, far from city lights, where the air above them is thin, dry "
        "and steady.",
        "Comets are lumps of ice and dust left over from the formation of the solar system. "
        "When one approaches the Sun, the ice turns directly into gas and carries dust with it, "
        "forming a bright head and a long tail that always points away from the Sun.",
    ],
    "history": [
        "The printing press changed Europe within a few decades. Before it, books were copied "
        "by hand and were rare and expensive. Once movable type made it cheap to produce many "
        "identical copies, pamphlets, newspapers and scientific works spread quickly, and more "
        "people learned to read.",
        "Canals were the highways of the early industrial age. A single horse could pull a "
        "barge carrying many tons of coal along a level waterway, far more than it could drag "
        "on a muddy road. Within a generation, however, railways offered faster transport and "
        "most canals fell into decline.",
        "Ancient libraries did more than store scrolls. Scholars gathered there to copy, edit "
        "and compare texts, and their catalogues were among the first attempts to organise all "
        "written knowledge. Much of what survives from antiquity reached us through their work.",
        "The history of timekeeping is a history of navigation. Sailors could find their "
        "latitude from the Sun, but longitude required an accurate clock that kept time at sea. "
        "The marine chronometer solved the problem in the eighteenth century and made long "
        "voyages much safer.",
    ],
    "gardening": [
        "Healthy soil is alive. It contains fungi, bacteria, insects and worms that break down "
        "dead plants and release nutrients. Adding compost every year feeds this community and "
        "improves the structure of the soil, so that it holds water in dry weather and drains "
        "well after rain.",
        "Tomatoes need warmth, sun and steady watering. Irregular watering causes the fruit to "
        "split or to develop dark patches at the bottom. Pinching out the side shoots of tall "
        "varieties directs the plant's energy into fewer, larger fruits.",
        "Crop rotation keeps pests and diseases from building up in one bed. Gardeners often "
        "divide their plot into four parts and move each family of vegetables to the next part "
        "every year, so that potatoes, beans, cabbages and roots take turns.",
        "Mulch is a layer of material spread over the soil surface. Straw, wood chips or shredded "
        "leaves keep the ground moist, suppress weeds and protect the roots from extremes of "
        "temperature. As the mulch decays it also adds organic matter to the soil.",
    ],
    "health": [
        "Regular physical activity benefits nearly every organ in the body. Adults who walk "
        "briskly for half an hour on most days lower their risk of heart disease and diabetes, "
        "sleep better and report a better mood. The best exercise is the one a person enjoys "
        "enough to keep doing.",
        "Sleep is when the brain consolidates memories and clears waste products. Most adults "
        "need seven to nine hours a night. Keeping a regular schedule, avoiding screens late in "
        "the evening and keeping the bedroom cool and dark all make it easier to fall asleep.",
        "Vaccines train the immune system to recognise a pathogen without causing the disease. "
        "When the body later meets the real infection, memory cells respond quickly and stop it "
        "before it can spread. High vaccination rates also protect people who cannot be "
        "vaccinated themselves.",
    ],
    "music": [
        "A piano has eighty-eight keys, and each key moves a felt hammer that strikes one, two or "
        "three strings. The strings are stretched across an iron frame that holds a combined "
        "tension of many tons. Tuning a piano means adjusting that tension string by string.",
        "Rhythm is the part of music that people notice first. Even listeners without training "
        "tap their feet to a steady beat, and babies move more to music with a clear pulse than "
        "to speech. Composers play with this expectation by delaying or anticipating the beat.",
        "An orchestra is arranged so that the conductor can see every player and the sound blends "
        "before it reaches the audience. Strings sit at the front, woodwinds and brass behind "
        "them, and percussion at the back, where its power does not drown out the others.",
    ],
}

GERMAN = [
    "Der Wald ist für viele Menschen ein Ort der Erholung. Zwischen den hohen Bäumen ist die "
    "Luft kühler und feuchter als in der Stadt, und der Boden federt unter den Schritten. "
    "Förster achten darauf, dass alte und junge Bäume nebeneinander wachsen.",
    "Die Eisenbahn verbindet heute fast jede größere Stadt des Landes. Wer früh bucht, reist "
    "oft günstiger als mit dem Auto, und unterwegs kann man lesen, arbeiten oder einfach aus "
    "dem Fenster schauen. Verspätungen ärgern die Fahrgäste trotzdem regelmäßig.",
    "Brot hat in Deutschland eine lange Tradition. In vielen Bäckereien gibt es dutzende Sorten, "
    "vom hellen Weizenbrot bis zum dunklen Roggenbrot mit Sauerteig. Besonders beliebt sind "
    "frische Brötchen am Sonntagmorgen.",
    "Die Energiewende verändert die Landschaft. Windräder stehen auf Hügeln und im Meer, "
    "Solarzellen bedecken Dächer und Felder. Gleichzeitig müssen neue Leitungen gebaut werden, "
    "damit der Strom aus dem Norden die Fabriken im Süden erreicht.",
    "Im Winter fahren viele Familien in die Berge. Sie laufen Ski, wandern durch den Schnee "
    "oder sitzen am Abend in einer warmen Hütte. Die Gemeinden in den Alpen leben zu einem "
    "großen Teil vom Tourismus.",
]

FRENCH = [
    "La cuisine française accorde une grande importance aux produits de saison. Au marché, les "
    "habitants choisissent leurs légumes avec soin et discutent longuement avec les "
    "producteurs. Un bon repas commence toujours par de bons ingrédients.",
    "Paris attire chaque année des millions de visiteurs. Ils se promènent le long de la Seine, "
    "visitent les musées et s'arrêtent dans les cafés pour regarder passer les gens. Les "
    "Parisiens, eux, préfèrent souvent les quartiers moins connus.",
    "La lecture reste un loisir très populaire en France. Les librairies indépendantes sont "
    "nombreuses et les prix littéraires de l'automne font beaucoup parler. Beaucoup de lecteurs "
    "empruntent aussi des livres à la bibliothèque municipale.",
    "Le vélo gagne du terrain dans les grandes villes. De nouvelles pistes cyclables ont été "
    "construites et de nombreux habitants se rendent au travail à bicyclette. Cela réduit la "
    "pollution et le bruit dans les rues.",
]

SPANISH = [
    "El mercado del barrio abre muy temprano por la mañana. Los vendedores colocan la fruta, el "
    "pescado y el pan en sus puestos mientras llegan los primeros clientes. A media mañana el "
    "lugar está lleno de voces y de olores.",
    "La siesta es una costumbre que muchos asocian con España, aunque hoy pocas personas la "
    "practican a diario. En verano, sin embargo, el calor de la tarde invita a descansar a la "
    "sombra antes de volver al trabajo.",
    "Las fiestas de los pueblos reúnen a vecinos de todas las edades. Hay música en la plaza, "
    "comida compartida y fuegos artificiales al final de la noche. Muchos emigrantes vuelven "
    "cada año para no perderse la celebración.",
]

# Pages a quality filter should drop.
BOILERPLATE_PAGES = [
    "Home | Products | About us | Contact | Login | Cart (0)\nSearch\nSign up for our newsletter",
    "Page not found\nThe page you requested could not be found.\nBack to home",
    "Cookies help us deliver our services. By using our services, you agree to our use of "
    "cookies.\nOK\nLearn more",
]
KEYWORD_SPAM = (
    "cheap flights ### best hotels ### cheap flights ### car rental ### best hotels ### deals "
    "### cheap flights ### last minute ### best hotels ### deals ### cheap flights ### car "
    "rental ### last minute ### deals ### best hotels ### cheap flights ### car rental ### deals "
    "### last minute ### best hotels ### cheap flights ### deals ### car rental ### last minute "
    "### best hotels ### cheap flights ### deals ### car rental ### last minute ### cheap ###"
)
NUMBER_TABLE = "\n".join(
    f"{i:04d} {i * 37 % 1000:03d} {i * 91 % 997:03d} {i * 13 % 101:03d} 2020-01-{i % 28 + 1:02d}"
    for i in range(1, 40)
)
LOREM_IPSUM = (
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt "
    "ut labore et dolore magna aliqua."
)

STACKEXCHANGE_THREADS = [
    (
        "Why does my bread collapse in the oven?",
        "<p>My loaves rise well on the counter but <em>collapse</em> as soon as they go into the "
        "oven. I use a standard white flour and instant yeast. What am I doing wrong?</p>",
        [
            (
                12,
                "<p>This is almost always <strong>over-proofing</strong>. The gluten network is "
                "stretched to its limit before baking, so the extra expansion in the oven breaks "
                "it. Shorten the final rise, or do it in a cooler place, and press the dough "
                "gently: if the dent springs back slowly, it is ready.</p>",
            ),
            (
                3,
                "<p>Check your oven temperature with a separate thermometer. An oven that runs "
                "cold sets the crust too late, and the loaf sags before the structure is "
                "fixed.</p>",
            ),
        ],
    ),
    (
        "How do I read a file line by line in Python?",
        "<p>I have a large log file and want to process it one line at a time without loading "
        "it all into memory. What is the idiomatic way?</p>",
        [
            (
                25,
                "<p>Iterate over the file object. It reads lazily, one line at a time:</p>"
                "<pre><code>with open('app.log', encoding='utf-8') as fh:\n    for line in fh:\n"
                "        handle(line.rstrip('\\n'))\n</code></pre><p>The <code>with</code> block "
                "closes the file even if an exception is raised.</p>",
            ),
            (
                4,
                "<p>If you need the line numbers too, wrap the file in "
                "<code>enumerate(fh, start=1)</code>.</p>",
            ),
            (
                -1,
                "<p>Use <code>fh.readlines()</code>.</p><p>It is simple and fast enough for most "
                "files, although it does read the whole file into memory at once.</p>",
            ),
        ],
    ),
    (
        "What is the difference between a process and a thread?",
        "<p>Both seem to run code concurrently. When should I use one rather than the other?</p>",
        [
            (
                18,
                "<p>A process has its own address space; threads inside one process share "
                "memory. Sharing makes communication between threads cheap but forces you to "
                "protect shared data with locks. Processes are isolated, so a crash in one does "
                "not corrupt the others, but passing data between them costs more.</p>",
            ),
        ],
    ),
    (
        "Why is the sky blue?",
        "<p>I have read that it has to do with scattering, but why blue and not violet?</p>",
        [
            (
                30,
                "<p>Air molecules scatter short wavelengths much more strongly than long ones, "
                "so blue and violet light is redirected across the whole sky. The Sun emits "
                "less violet than blue, some violet is absorbed high in the atmosphere, and our "
                "eyes are less sensitive to it, so the mixture we see looks blue.</p>",
            ),
            (
                2,
                "<p>At sunset the light travels through much more air, so most of the blue is "
                "scattered away before it reaches you and the remaining light looks red and "
                "orange.</p>",
            ),
        ],
    ),
    (
        "How often should I water tomato plants?",
        "<p>My tomato plants are in large pots on a sunny balcony. Some fruits split and others "
        "have dark patches at the bottom.</p>",
        [
            (
                9,
                "<p>Both symptoms point to irregular watering. In pots, water deeply every day "
                "in hot weather, ideally in the morning, so that the soil never dries out "
                "completely. A layer of mulch on top of the pot helps keep the moisture "
                "even.</p>",
            ),
        ],
    ),
    (
        "How can I make git forget a file that is now in .gitignore?",
        "<p>I added a build folder to <code>.gitignore</code>, but git still shows changes to "
        "files inside it.</p>",
        [
            (
                40,
                "<p><code>.gitignore</code> only affects untracked files. Remove the folder from "
                "the index while keeping it on disk:</p><pre><code>git rm -r --cached build/\n"
                'git commit -m "Stop tracking build output"\n</code></pre>',
            ),
            (
                5,
                "<p>Note that the files stay in the history. If they contain secrets, rotate "
                "the secrets; removing them from old commits requires rewriting history.</p>",
            ),
        ],
    ),
    (
        "Does a telescope's magnification matter most?",
        "<p>I want to buy my first telescope. Shops advertise 600x magnification. Is that the "
        "number to compare?</p>",
        [
            (
                22,
                "<p>No. The aperture, the diameter of the main lens or mirror, decides how much "
                "light the telescope gathers and how much detail it can resolve. Useful "
                "magnification is limited to roughly twice the aperture in millimetres, and "
                "the air above you usually limits it further.</p>",
            ),
        ],
    ),
    (
        "Why do my unit tests pass locally but fail in CI?",
        "<p>The same test suite passes on my laptop and fails on the build server.</p>",
        [
            (
                15,
                "<p>Common causes: tests that depend on the order they run in, on the current "
                "time or time zone, on files left over from earlier runs, or on software you "
                "installed by hand. Run the suite from a fresh clone in a clean environment to "
                "reproduce what CI sees.</p>",
            ),
            (
                6,
                "<p>Also compare versions: pin your dependencies so that both machines install "
                "the same ones.</p>",
            ),
        ],
    ),
]

# A question whose only answer is from another thread's id that does not exist in the dump.
ORPHAN_ANSWER_PARENT = 9999
