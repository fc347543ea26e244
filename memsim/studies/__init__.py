"""Studies built on the experiment machinery (binarized networks)."""
