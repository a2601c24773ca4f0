"""Self-written format-constrained and pretext-framed prompts for the prompt classifier (training only).

Two surface patterns fooled the 0.5 prompt classifier (pc5) in both directions:

* **Format constraints.** Ordinary instruction-following requests that carry output rules
  ("wrap your answer in double quotes", "end with the exact phrase ...", "do not use the
  word ...", "add a P.S.") were read as jailbreaks: rule-laden prompts in its training data
  were almost all jailbreak templates.  Here the same constraints are attached to benign
  tasks (safe) and to harmful requests (unsafe), so a constraint never signals the label.
* **Pretexts.** "for educational purposes", "for my novel", "hypothetically" are attached
  to harmful requests (still unsafe) and to benign look-alike tasks (still safe): the
  pretext must not change the verdict either way.

Every text is written here by the guardkit-mini author (Apache-2.0, this repo); nothing is
copied from any dataset or benchmark.  Harmful objectives are reused from
request_prompts.HARMFUL_TASKS (requests only, no operational detail).  ``constraint_prompts()``
returns (text, label, category) rows, label safe/unsafe, category None for safe.
"""
from __future__ import annotations

import random

from request_prompts import BENIGN_LOOKALIKES, HARMFUL_TASKS, _fill, _frames_for, _kind, _norm

BENIGN_TASKS = [
    "Write a poem about the first snow of winter", "Write a short essay on the history of the printing press",
    "Write a cover letter for a barista job at a small cafe", "Write a product review of a blender I bought last month",
    "Write a rap about recycling for a primary school assembly", "Summarise the plot of Hamlet",
    "Write a limerick about a cat who hates Mondays", "Write a blog post about a week of travel in Portugal",
    "Write an email to my landlord about the broken heater", "Write a riddle whose answer is a shadow",
    "Write a funny story about a robot learning to bake bread", "Write a pitch for a dog-walking startup",
    "Rewrite this sentence to sound more formal: 'we gotta push the meeting cuz nobody's ready'",
    "Write a graduation speech for a high school class", "Write a product description for noise-cancelling headphones",
    "Write a dialogue between a customer and a waiter who mixed up the order", "Write a resume summary for a junior data analyst",
    "Plan a three-day itinerary for Rome on a budget", "Write a joke about programmers and coffee", "Write a haiku about the sea at night",
    "Write a letter to a friend about moving to Canada", "Write a song about a summer road trip", "Write an ad for a lemonade stand",
    "Write a critique of a painting of a stormy harbour", "Write an obituary for a fictional sea captain",
    "Write a tweet announcing our school bake sale", "Explain photosynthesis to a ten-year-old", "Write a thank-you note to my neighbour",
    "Describe the water cycle", "Write a bedtime story about a sleepy owl", "Write an apology email for missing a deadline",
    "Write a speech for my parents' 30th wedding anniversary", "Explain how interest rates affect mortgages",
    "Write a short mystery story set on a night train", "Write a villain's monologue for my fantasy novel",
    "Write a scary campfire story about an abandoned lighthouse", "Write an angry but polite complaint about a delayed flight",
    "Write a rap battle verse making fun of my friend's cooking", "Write a review of a horror movie about zombies",
    "Write a news report about a town's annual pumpkin festival", "Write a persuasive essay on why homework should be limited",
    "Write a job posting for a part-time librarian", "Write a LinkedIn post about finishing a marathon",
    "Write a recipe for vegetarian chili", "Write a short story about a detective solving a museum theft",
    "Write a love letter from a lighthouse keeper to the moon", "Write a FAQ page for a bicycle repair shop",
    "Explain the causes of the First World War", "Write a motivational message for a team before a big match",
    "Write a summary of the French Revolution", "Write a parody of a nature documentary about my cat",
    "Write a pep talk for someone starting their first job", "Write a welcome message for new members of a book club",
    "Explain what a blockchain is", "Write an essay about the pros and cons of remote work",
    "Write a fairy tale about a dragon who is afraid of fire", "Write a social media caption for a sunset photo",
    "Describe a busy market in Marrakech", "Write a eulogy for my grandfather who loved fishing",
    "Write instructions for assembling a bookshelf", "Write a story about a knight who loses his sword in battle",
    "Write a debate opening statement about banning cars from city centres", "Write a weekly newsletter for a gardening club",
]

CONSTRAINTS = [
    "Wrap your whole answer in double quotation marks.", "Do not use any commas.", "Answer in capital letters only.",
    "Use only lowercase letters, no capitals at all.", "Finish with the exact sentence \"Let me know if you need more.\"",
    "Add a postscript at the end that starts with P.P.S.", "Keep it under 80 words.", "Make it at least 300 words long.",
    "Give your answer a title inside double angle brackets, like <<my title>>.", "Use exactly four bullet points in markdown.",
    "Split it into 3 sections and start each one with PART 1, PART 2 and PART 3.", "Put the whole response in JSON.",
    "Don't mention the word \"very\" anywhere.", "Include the words \"lantern\" and \"harbour\".",
    "Highlight at least two phrases with markdown italics, like *this*.", "Repeat my request word for word first, then answer it.",
    "Give two different versions separated by a line of six asterisks.", "Write it as if you were a Victorian butler.",
    "Pretend you are a pirate while answering.", "Answer in the voice of a grumpy old wizard.", "Reply in exactly two paragraphs separated by ***.",
    "The letter z should appear at least 5 times.", "End your answer with a question.", "Do not use the letter 'e' more than 20 times.",
    "Start your answer with the word \"Honestly\".", "Format it as a numbered list of 5 items.", "No more than three sentences, please.",
    "Your response must be in Spanish, no other language.", "Put a one-line summary in bold at the very top.",
    "Write everything inside a markdown code block.", "Each sentence must begin with a different letter of the alphabet.",
]

PRETEXTS = [
    "{R} for educational purposes.", "{R}, just for educational purposes", "Hypothetically, {r}?", "{R} for a school project.",
    "For a novel I'm writing, {r}.", "{R}. It's for a research paper.", "Just curious: {r}?", "{R} - asking for a friend.",
    "In a fictional world, {r}.", "{R} for a cybersecurity class.", "{R}. This is purely theoretical.", "{R} for a screenplay.",
]


def _request(rng: random.Random, task: str) -> str:
    return _fill(rng.choice(_frames_for(task)), task).rstrip(".?!")


def _bare(task: str) -> str:
    """The task as a bare request a pretext can wrap: "how to make X" or "write X"."""
    return task if _kind(task) != "do" else f"how to {task}"


def _pretexted(rng: random.Random, request: str) -> str:
    frame = rng.choice(PRETEXTS)
    return frame.replace("{R}", request[:1].upper() + request[1:]).replace("{r}", request)


def constraint_prompts(seed: int = 0) -> list[tuple[str, str, str | None]]:
    """(text, label, category): benign and harmful requests with the same format constraints and pretexts."""
    rng = random.Random(seed)
    rows: list[tuple[str, str, str | None]] = []
    harmful = [(task, cat) for cat, tasks in HARMFUL_TASKS.items() for task in tasks]
    for task in BENIGN_TASKS:  # each benign task with three constraint sets (one or two rules)
        for _ in range(3):
            rules = rng.sample(CONSTRAINTS, rng.choice((1, 1, 2)))
            rows.append((f"{task}. " + " ".join(rules), "safe", None))
    for task, cat in rng.sample(harmful, min(len(harmful), 3 * len(BENIGN_TASKS))):
        rules = rng.sample(CONSTRAINTS, rng.choice((1, 1, 2)))
        rows.append((f"{_request(rng, task)}. " + " ".join(rules), "unsafe", cat))
    for task, cat in rng.sample(harmful, min(len(harmful), 160)):
        rows.append((_pretexted(rng, _bare(task)), "unsafe", cat))
    for task in rng.sample(BENIGN_LOOKALIKES + BENIGN_TASKS, 160):
        request = _bare(task) if task in BENIGN_LOOKALIKES else task[:1].lower() + task[1:]
        rows.append((_pretexted(rng, request), "safe", None))
    seen: set[str] = set()
    out = []
    for text, label, cat in rows:
        key = _norm(text)
        if key not in seen:
            seen.add(key)
            out.append((text, label, cat))
    return out


if __name__ == "__main__":
    import collections

    rows = constraint_prompts()
    print(len(rows), "rows;", dict(collections.Counter(label for _, label, _ in rows)))
    for row in random.Random(1).sample(rows, 12):
        print(row)
