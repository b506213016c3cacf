"""Word-level text helpers shared by the extractive summarizer and keyword (BM25) retrieval."""

from __future__ import annotations

import re

IDEOGRAPHS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # CJK writes no spaces: each ideograph counts as a word
WORDS = re.compile(rf"[{IDEOGRAPHS}]|[^\W_{IDEOGRAPHS}]+")

# English function words, contraction pieces (don't -> don, t) and chat filler: none of them says what a line is about.
_STOPWORD_TEXT = """
    a about above after again against all also am an and any are as at be because been before being below between both
    but by can could did do does doing don down during each either else even ever few for from further get gets got had
    has have having he her here hers herself him himself his how however i if in into is it its itself just let me might
    more most much must my myself neither no nor not now of off on once only or other our ours ourselves out over own
    quite rather really same shall she should so some such than that the their theirs them themselves then there these
    they this those through to too under until up upon us very was we well were what when where which while who whom
    whose why will with would yet you your yours yourself yourselves
    s t d m ll re ve isn aren wasn weren doesn didn hasn haven hadn won wouldn shouldn couldn cannot
    hi hello hey bye goodbye thanks thank thx ok okay yes yeah yep nope sure please great cool nice good fine right
    oh ah hmm um uh lol sorry welcome
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def content_words(text: str) -> list[str]:
    """Lowercase word tokens of ``text`` (digits kept, each CJK ideograph a word), minus stopwords."""
    return [word for word in WORDS.findall(text.lower()) if word not in STOPWORDS]
