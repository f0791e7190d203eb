"""Packet sources: each yields raw batches (bytes, meta) for the decoder."""
