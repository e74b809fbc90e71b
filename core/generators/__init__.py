"""One module per generator, orchestration only: check the inputs, get the cached model, run it,
report what was applied. Steps two generators share (enlarging a picture, restoring faces) are
internal helpers here (`enlarge`, `restoration`); a generator never calls another's public function.
"""
