"""Pixels: image I/O and value ranges (`io`), tiling (`tiling`) and face detection (`face_detection`).
No model is loaded here."""
