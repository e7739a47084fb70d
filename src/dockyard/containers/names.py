"""Container names: Docker's validation rule and generated ``adjective_surname`` names."""

from __future__ import annotations

import random
import re

from dockyard.errors import InvalidArgument

__all__ = ["NAME_RE", "generate_name", "validate_name"]

NAME_RE = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")

_LEFT = (
    "admiring adoring affectionate agitated amazing angry awesome beautiful blissful bold boring "
    "brave busy charming clever compassionate competent condescending confident cool cranky crazy "
    "dazzling determined distracted dreamy eager ecstatic elastic elated elegant eloquent epic "
    "exciting fervent festive flamboyant focused friendly frosty funny gallant gifted goofy gracious "
    "great happy hardcore heuristic hopeful hungry infallible inspiring intelligent interesting "
    "jolly jovial keen kind laughing loving lucid magical modest musing mystifying naughty nervous "
    "nice nifty nostalgic objective optimistic peaceful pedantic pensive practical priceless quirky "
    "quizzical recursing relaxed reverent romantic sad serene sharp silly sleepy stoic strange "
    "stupefied suspicious sweet tender thirsty trusting unruffled upbeat vibrant vigilant vigorous "
    "wizardly wonderful xenodochial youthful zealous zen"
).split()

_RIGHT = (
    "agnesi albattani allen almeida archimedes ardinghelli aryabhata austin babbage banach bardeen "
    "bartik bassi bell bhabha bhaskara blackwell bohr booth borg bose boyd brahmagupta brattain "
    "brown carson cerf chandrasekhar clarke colden cori cray curie darwin davinci dijkstra dubinsky "
    "easley einstein elion engelbart euclid euler faraday fermat fermi feynman franklin galileo "
    "gates goldberg goldstine goldwasser golick goodall hamilton hawking heisenberg hermann hodgkin "
    "hoover hopper hugle hypatia jackson jang jennings jepsen johnson joliot jones kalam kapitsa "
    "keller kepler khorana kilby kirch knuth kowalevski lalande lamarr lamport leakey leavitt "
    "lewin lichterman liskov lovelace lumiere mahavira margulis matsumoto maxwell mayer mccarthy "
    "mcclintock mclean mcnulty meitner mendel mendeleev merkle mirzakhani montalcini moore morse "
    "napier nash neumann newton nightingale nobel noether northcutt noyce panini pare pascal "
    "pasteur payne perlman pike poincare poitras ptolemy raman ramanujan ride ritchie robinson "
    "roentgen rosalind saha sammet shamir shannon shaw shirley shockley sinoussi snyder spence "
    "stonebraker sutherland swanson swartz swirles taussig tesla tharp thompson torvalds tu turing "
    "varahamihira vaughan villani visvesvaraya volhard wescoff wiles williams wilson wing wozniak "
    "wright wu yalow yonath zhukovsky"
).split()


def validate_name(name: str) -> str:
    """Return the name without a leading ``/``; InvalidArgument with Docker's message otherwise."""
    if not NAME_RE.match(name):
        raise InvalidArgument(
            f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )
    return name.lstrip("/")


def generate_name(rng: random.Random | None = None, *, retry: int = 0) -> str:
    """Docker's scheme: ``adjective_surname``, with a digit appended on retries."""
    r = rng or random.SystemRandom()
    name = f"{r.choice(_LEFT)}_{r.choice(_RIGHT)}"
    if retry:
        name += str(r.randint(0, 9) + retry)
    return name
