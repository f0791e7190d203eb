"""wirewatch: a fast, transparent, rule-based network intrusion detection system."""

__version__ = "0.1.0"
