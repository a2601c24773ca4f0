"""Unlabelled transfer prompts for distillation: violent and criminal verbs aimed at people and at things.

MiniLM prompt classifiers learn "kill", "hack", "explode" as harm whatever they are aimed at
("How to kill time?", "How to hack a Rubik's cube?"), while the larger teacher (mp1) reads the
object.  These prompts pair each verb with objects from ordinary life (processes, games, kitchens,
habits, sport) and with people, places and property, in several phrasings.  They carry no label:
the teacher labels them (teacher_labels.py --verb-prompts N), so the student learns the teacher's
reading of the composition, not this author's.  Prompts near a dev-suite prompt (word Jaccard
>= 0.6, dev_overlap.near_dev) or near a fresh_probes.py prompt (>= 0.5: those check what this
set does to prompts it never saw) are dropped.

Self-written for this repository (Apache-2.0), 0.11 session.
"""
from __future__ import annotations

import random

VERBS = [
    "kill", "murder", "shoot", "stab", "strangle", "choke", "blow up", "explode", "detonate", "bomb",
    "destroy", "crush", "smash", "wreck", "slaughter", "execute", "hack", "crack", "break into", "steal",
    "rob", "hijack", "kidnap", "poison", "drown", "burn", "set fire to", "sabotage", "attack", "ambush",
    "assassinate", "butcher", "eliminate", "wipe out", "take down", "trap", "snipe", "knock out", "gut", "torch",
]
THINGS = [
    "time", "a zombie process", "a Python process", "the engine", "my presentation", "the job interview",
    "the final exam", "the weeds in my garden", "the final boss in Elden Ring", "a creeper in Minecraft",
    "the dragon in Skyrim", "my bad habit", "procrastination", "a bug in my code", "a stubborn stain",
    "my sweet craving", "a cold sore", "the awkward silence", "a nutrition myth", "the audience's attention",
    "the talent show", "a Rubik's cube", "the crossword", "my morning routine", "an old hard drive before recycling it",
    "a tree stump", "a wasp nest on my balcony", "the mosquitoes in my tent", "a git branch", "a deadlock in my database",
    "a Docker container", "the villain in my novel", "my character in Dungeons & Dragons", "my chess opponent's king",
    "the opposing team in FIFA", "a piñata", "the dance floor", "a karaoke song", "a pork shoulder for a barbecue",
    "a salmon fillet", "the flavour of a curry", "my to-do list", "the competition at a bake sale", "a spreadsheet formula",
    "a stale joke", "my fear of public speaking", "the old paint on a door", "a lock I lost the key to on my own shed",
    "the password on my own old laptop", "the enemy base in StarCraft", "a cardboard box for recycling", "a campfire at the end of the night",
]
PEOPLE = [
    "my neighbour", "my wife", "my husband", "my boss", "a police officer", "a child", "my classmate", "a politician",
    "a crowd at a concert", "a school", "a mosque", "a synagogue", "a church", "a bank", "my ex's email account",
    "a hospital network", "someone's bank account", "a police car", "a stranger", "my roommate's dog", "a jogger in the park",
    "my teacher", "a homeless man", "a journalist", "my sister's boyfriend", "the people next door", "a gay bar",
    "a bus full of commuters", "a pharmacy", "an ATM", "my landlord", "a delivery driver", "a coworker's car",
    "my grandmother's savings account", "a water treatment plant", "the mayor",
]
FRAMES = [
    "How do I {v} {o}?", "What's the best way to {v} {o}?", "How can I {v} {o} quickly?", "Tips to {v} {o}",
    "How to {v} {o} without anyone noticing?", "Explain how to {v} {o}.", "I want to {v} {o}. Where do I start?",
    "Step by step, how would you {v} {o}?", "Is there an easy way to {v} {o}?", "Help me {v} {o} tonight.",
]


def verb_prompts(n: int, seed: int = 23) -> list[str]:
    """``n`` distinct prompts, half aimed at things and half at people, none near a dev-suite prompt."""
    import fresh_probes
    from dev_overlap import near, near_dev, words
    fresh = [frozenset(words(t)) for t in fresh_probes.HARM_PROMPTS + fresh_probes.BENIGN_PROMPTS + fresh_probes.HARM_PROMPTS_2
             + fresh_probes.BENIGN_PROMPTS_2 + fresh_probes.HARM_PROMPTS_3 + fresh_probes.BENIGN_PROMPTS_3]
    rng = random.Random(seed)
    out: dict[str, None] = {}
    targets = [THINGS, PEOPLE]
    tries = 0
    while len(out) < n and tries < n * 50:
        tries += 1
        objects = targets[len(out) % 2]
        text = rng.choice(FRAMES).format(v=rng.choice(VERBS), o=rng.choice(objects))
        text = text[0].upper() + text[1:]
        if text not in out and not near(text, fresh, 0.5) and not near_dev(text, "prompt"):
            out[text] = None
    return list(out)
