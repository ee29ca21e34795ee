"""A load generator for any OpenAI-compatible server: `warmserve bench`.

settings.py says what to run, prompt.py makes the prompts, loadgen.py sends and
times the requests, stats.py summarises each concurrency level, report.py prints
and writes the results, runner.py puts them in order. It is a client only: it
imports nothing of the server, and nothing here is imported by `warmserve serve`.
"""
