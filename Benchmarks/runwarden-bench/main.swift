// Placeholder: the benchmark driver is being written.
print("runwarden-bench: not written yet")
