"""Packet classifiers shared by detectors: what is a probe, what answers it, which TCP
handshakes complete. They read a batch's columns and return masks or keys; no state of their own
except the handshake tracker."""
