"""Speed and quality benchmarks: `python -m benchmarks.run [NAME ...]`, one JSON line each."""
