# ruff: noqa: E501  (template strings read better whole)
"""Generated text in two registers the reference classifier must tell apart: encyclopedia
articles (the Wikipedia sample, and the few reference-like pages a crawl also holds) and the
everyday web (shops, forums, personal blogs, listings, event notices) that most of a random
crawl is made of. Original templates written for this project; names are invented.

Every generator takes a `random.Random`, so the samples stay byte-for-byte reproducible.
"""

from __future__ import annotations

import random

_ONSETS = ["b", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "br", "gr",
           "st", "tr", "kl", "sk"]  # fmt: skip
_VOWELS = ["a", "e", "i", "o", "u", "au", "ei", "io"]
_CODAS = ["", "n", "r", "l", "s", "nd", "rk", "st", "m", "th"]
_TOWN_SUFFIXES = ["by", "ford", "heim", "ville", "stad", "wick", "dorf", "mouth"]


def name(r: random.Random, syllables: int = 2) -> str:
    word = "".join(
        r.choice(_ONSETS) + r.choice(_VOWELS) + r.choice(_CODAS) for _ in range(syllables)
    )
    return word.capitalize()


def town_name(r: random.Random) -> str:
    return name(r, 1) + r.choice(_TOWN_SUFFIXES)


def person_name(r: random.Random) -> str:
    return f"{name(r, 2)} {name(r, 2)}"


_COUNTRIES = ["Norland", "Estmark", "Valdoria", "Kestria", "Ostavia", "Lunaria", "Westerra"]
_REGIONS = ["northern", "southern", "eastern", "western", "central"]
_INDUSTRIES = ["textile manufacturing", "shipbuilding", "wine production", "coal mining",
               "paper milling", "fishing", "tourism", "glassmaking"]  # fmt: skip
_LANDMARKS = ["a Romanesque church", "a medieval stone bridge", "a former customs house",
              "a baroque town hall", "the ruins of a castle", "a nineteenth-century railway station"]  # fmt: skip
_FAMILIES = ["Fringillidae", "Rosaceae", "Salmonidae", "Asteraceae", "Corvidae", "Lamiaceae"]
_HABITATS = ["deciduous woodland", "upland heath", "coastal marshes", "alpine meadows",
             "slow-flowing rivers", "dry grassland"]  # fmt: skip
_FIELDS = ["chemistry", "astronomy", "geology", "mathematics", "botany", "linguistics"]
_INSTRUMENTS = ["string quartets", "symphonies", "operas", "piano sonatas", "choral works"]


def _town_article(r: random.Random) -> tuple[str, str]:
    title = town_name(r)
    country, river = r.choice(_COUNTRIES), name(r, 2)
    population, founded = r.randint(2_000, 180_000), r.randint(900, 1600)
    census = r.choice([2001, 2011, 2021])
    lead = (
        f"{title} is a town in the {r.choice(_REGIONS)} part of {country}. It lies on the "
        f"{river} River and had a population of {population:,} at the {census} census."
    )
    history = (
        f"The settlement is first mentioned in a charter of {founded}, when it belonged to the "
        f"bishops of {town_name(r)}. It received market rights in {founded + r.randint(20, 200)} "
        f"and grew as a centre of {r.choice(_INDUSTRIES)}. During the {r.choice(['17th', '18th', '19th'])} "
        f"century the town was fortified, and parts of the walls survive today."
    )
    economy = (
        f"The local economy was long dominated by {r.choice(_INDUSTRIES)}. Since the closure of "
        f"the last large employer in {r.randint(1960, 2005)}, services and "
        f"{r.choice(_INDUSTRIES)} have become the main sources of employment."
    )
    landmarks = (
        f"Notable buildings include {r.choice(_LANDMARKS)} and {r.choice(_LANDMARKS)}. The "
        f"historic centre was designated a protected area in {r.randint(1950, 2010)}."
    )
    return title, "\n\n".join(
        [lead, "History", history, "Economy", economy, "Landmarks", landmarks]
    )


def _species_article(r: random.Random) -> tuple[str, str]:
    genus, epithet = name(r, 2), name(r, 2).lower()
    title = f"{genus} {epithet}"
    family = r.choice(_FAMILIES)
    lead = (
        f"{title} is a species in the family {family}. It was first described by the "
        f"naturalist {person_name(r)} in {r.randint(1758, 1900)}."
    )
    description = (
        f"Adults reach a length of {r.randint(8, 60)} centimetres. The species is distinguished "
        f"from related taxa by its {r.choice(['pale underside', 'serrated leaves', 'dark crown', 'forked tail'])} "
        f"and by the {r.choice(['number of scales', 'shape of the seed', 'pattern of the wing bars'])}."
    )
    distribution = (
        f"It is native to {r.choice(_HABITATS)} in {r.choice(_COUNTRIES)} and "
        f"{r.choice(_COUNTRIES)}, where it is found at elevations of up to {r.randint(200, 2500)} "
        f"metres. The population is considered stable and the species is classified as being "
        f"of least concern."
    )
    return title, "\n\n".join([lead, "Description", description, "Distribution", distribution])


def _person_article(r: random.Random) -> tuple[str, str]:
    title = person_name(r)
    born = r.randint(1700, 1950)
    died = born + r.randint(45, 90)
    if r.random() < 0.5:
        field = r.choice(_FIELDS)
        lead = (
            f"{title} ({born}–{died}) was a {r.choice(_COUNTRIES)}n scientist known for work in "
            f"{field}. He held a chair at the University of {town_name(r)} from "
            f"{born + r.randint(28, 40)} until his retirement."
        )
        work = (
            f"His best known contribution is the {name(r, 2)} method, published in "
            f"{born + r.randint(25, 45)}, which remained a standard reference in {field} for "
            f"several decades. He was elected a member of the national academy in "
            f"{born + r.randint(40, 55)}."
        )
    else:
        lead = (
            f"{title} ({born}–{died}) was a composer and conductor from "
            f"{r.choice(_COUNTRIES)}. He is remembered chiefly for his {r.choice(_INSTRUMENTS)}."
        )
        work = (
            f"After studies at the conservatory of {town_name(r)}, he was appointed music "
            f"director of the court orchestra in {born + r.randint(25, 35)}. His works were "
            f"widely performed during his lifetime but were largely forgotten until a revival "
            f"in the {r.choice(['1960s', '1970s', '1980s', '1990s'])}."
        )
    legacy = (
        f"A street in {town_name(r)} bears his name, and his papers are held by the national "
        f"library of {r.choice(_COUNTRIES)}."
    )
    return title, "\n\n".join([lead, "Life and work", work, "Legacy", legacy])


def encyclopedia_article(r: random.Random) -> tuple[str, str]:
    """(title, plain text with section headings on their own lines)."""
    return r.choice([_town_article, _species_article, _person_article])(r)


_PRODUCTS = ["wireless earbuds", "garden hose", "yoga mat", "phone case", "coffee grinder",
             "hiking boots", "LED desk lamp", "kids' backpack", "cast iron skillet"]  # fmt: skip
_COLORS = ["black", "navy", "red", "forest green", "grey", "white"]
_PROBLEMS = ["my laptop keeps overheating", "the wifi drops every evening",
             "my tomato plants have yellow leaves", "the car makes a clicking noise when I turn",
             "my sourdough starter smells like nail polish", "the dishwasher leaves white spots"]  # fmt: skip
_FEELINGS = ["so excited", "honestly obsessed", "a little nervous", "super happy", "kind of tired"]


def _shop_page(r: random.Random) -> str:
    product, color = r.choice(_PRODUCTS), r.choice(_COLORS)
    price = r.randint(9, 199) + r.choice([0.99, 0.49, 0.0])
    reviews = [
        f"★★★★★ Love it!! Bought the {color} one for my {r.choice(['husband', 'daughter', 'dad'])} and he uses it every day.",
        "★★★★☆ Good value for the price, shipping took a week though.",
        f"★★☆☆☆ Stopped working after {r.randint(2, 9)} weeks. Customer service was helpful at least.",
        "★★★★★ Exactly as described, would buy again. Fast delivery!",
    ]
    return "\n".join(
        [
            f"{product.title()} - {color.title()} | {name(r, 2)} Store",
            f"FREE SHIPPING on orders over ${r.choice([35, 50, 75])}! Use code SAVE{r.randint(10, 30)} at checkout.",
            f"Price: ${price:.2f}   In stock - order within {r.randint(2, 9)} hrs for next-day delivery",
            "Add to cart   Add to wishlist   Compare",
            f"Our {product} is made for everyday use. Whether you are at home, at work or on the "
            f"go, you will love the quality and the {color} finish. Order now while supplies last!",
            f"Customer reviews ({r.randint(3, 400)})",
            *r.sample(reviews, 3),
            "Customers who bought this item also bought: " + ", ".join(r.sample(_PRODUCTS, 3)),
            "Sign up for our newsletter and get 10% off your first order!",
        ]
    )


def _forum_thread(r: random.Random) -> str:
    problem = r.choice(_PROBLEMS)
    user, helper = name(r, 2).lower() + str(r.randint(1, 99)), name(r, 2).lower()
    return "\n\n".join(
        [
            f"Help!! {problem} - any ideas?",
            f"Posted by {user} » {r.randint(1, 28)} {r.choice(['Mar', 'Jun', 'Oct'])} 20{r.randint(10, 23)}",
            f"Hi all, first post here so sorry if this is the wrong place. Basically {problem} and "
            f"I have no idea what to do anymore. I already tried restarting everything and "
            f"googling for hours lol. Has anyone had the same thing? Thanks in advance!!",
            f"Re: {problem}\n{helper} wrote: Had the exact same issue last year. Try "
            f"{r.choice(['cleaning it with vinegar', 'updating the drivers', 'moving it somewhere cooler', 'feeding it twice a day'])}, "
            f"that fixed it for me. If not, take it back to the shop, it's probably still under warranty.",
            f"Re: {problem}\n{user} wrote: omg that worked, thank you so much!! You are a lifesaver :)",
            "Reply   Quote   Report   Back to top",
        ]
    )


def _personal_blog(r: random.Random) -> str:
    topic = r.choice(["my morning routine", "our trip to the coast", "decluttering my closet",
                      "my first half marathon", "meal prep on a budget"])  # fmt: skip
    return "\n\n".join(
        [
            f"{topic.title()} (and what I learned!)",
            f"Hey guys!! So I'm {r.choice(_FEELINGS)} to finally share {topic} with you. A lot of "
            f"you asked about it in the comments last week, so here it is. Grab a coffee because "
            f"this one is a long one haha.",
            f"Honestly I never thought I would be the kind of person who does this, but here we "
            f"are. The first week was really hard and I almost gave up like {r.randint(2, 5)} "
            f"times. My {r.choice(['husband', 'best friend', 'mom', 'sister'])} kept telling me to "
            f"stick with it and I'm so glad I did!!",
            "Anyway that's it for today! Let me know in the comments what you think, and don't "
            "forget to follow me on Instagram for more behind the scenes stuff. Love you all xx",
            f"This post may contain affiliate links. {r.randint(3, 80)} comments",
        ]
    )


def _listing(r: random.Random) -> str:
    town = town_name(r)
    beds, baths = r.randint(1, 5), r.randint(1, 3)
    return "\n".join(
        [
            f"For sale: {beds} bed {baths} bath {r.choice(['house', 'apartment', 'cottage'])} in {town}",
            f"${r.randint(120, 950)},000 | {r.randint(60, 300)} m² | Listed {r.randint(2, 30)} days ago",
            f"Welcome home! This {r.choice(['charming', 'stunning', 'spacious', 'cosy'])} property "
            f"features a newly renovated kitchen, hardwood floors throughout and a sunny back "
            f"yard perfect for entertaining. Close to schools, shops and public transport.",
            f"Don't miss out - book your private viewing today! Call {name(r, 2)} Realty on "
            f"555-{r.randint(1000, 9999)} or send us a message.",
            "Mortgage calculator   Save listing   Share   Similar homes nearby",
        ]
    )


def _event_notice(r: random.Random) -> str:
    event = r.choice(["summer fair", "craft beer festival", "charity fun run", "farmers market",
                      "open mic night", "car boot sale"])  # fmt: skip
    return "\n\n".join(
        [
            f"{town_name(r)} {event.title()} - this Saturday!",
            f"Join us this Saturday from {r.randint(9, 12)}am at {name(r, 2)} Park for the "
            f"{event}! There will be food trucks, live music, face painting for the kids and "
            f"loads of local stalls. Entry is ${r.randint(2, 15)} at the gate, kids go free.",
            "Parking is limited so please car share or take the bus if you can. Dogs on leads "
            "are welcome. Volunteers still needed, sign up on our Facebook page!",
            "Tickets   Map   Contact us   Privacy policy   Terms of use",
        ]
    )


def web_page(r: random.Random) -> tuple[str, str]:
    """(url path kind, text) of an everyday web page."""
    kind, make = r.choice(
        [
            ("shop", _shop_page),
            ("forum", _forum_thread),
            ("blog", _personal_blog),
            ("listing", _listing),
            ("events", _event_notice),
        ]
    )
    return kind, make(r)
