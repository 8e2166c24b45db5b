"""Clinical decision support for posterior thigh pain, served as CDS Hooks 2.0."""

__version__ = "0.1.0"
