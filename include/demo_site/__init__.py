"""Demo listings website: deterministic pages from a seed and a day, with drift and corruption switches."""
