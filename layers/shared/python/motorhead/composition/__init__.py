"""The composition root: builds each function's service from the settings, once per process (at cold start, never
touching the network). One module per kind of function, so that a function imports only what it runs:

- ``memory``: the HTTP memory functions (Redis store, SQS job queues): no numpy, openai, onnxruntime or tiktoken;
- ``summarization``: the summarizer (summary writer, chat model, tiktoken);
- ``long_term``: retrieval and the indexer (embedder, vector and keyword indexes; numpy);
- ``providers``: what the last two share (provider keys, time reserves).
"""
