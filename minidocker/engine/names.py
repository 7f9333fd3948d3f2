"""Random container names, docker style: an adjective and a pioneer's surname.

docker's own list (moby pkg/namesgenerator) honours scientists and hackers; this
is a shorter list of our own in the same spirit, with people from the history of
operating systems and containers.
"""
import secrets

ADJECTIVES = [
    "admiring", "bold", "brave", "busy", "calm", "clever", "cool", "eager", "elegant",
    "focused", "gallant", "happy", "jolly", "keen", "kind", "lucid", "modest", "nifty",
    "patient", "quirky", "serene", "sharp", "stoic", "tender", "vibrant", "wizardly", "zen",
]

SURNAMES = [
    "allen", "bach", "corbato", "dijkstra", "engelbart", "hamilton", "hopper", "kernighan",
    "knuth", "lamport", "liskov", "lovelace", "mccarthy", "menage", "mckusick", "pike",
    "raymond", "ritchie", "saltzer", "shannon", "tanenbaum", "thompson", "torvalds", "turing",
    "wilkes", "wirth",
]


def random_name() -> str:
    return f"{secrets.choice(ADJECTIVES)}_{secrets.choice(SURNAMES)}"
