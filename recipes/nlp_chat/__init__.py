"""nlp-chat: conversations -> a dialogue model that writes the assistant's next turn.

The default works fully offline: a byte-level BPE tokenizer with role markers as special tokens is fitted
on the training conversations and a small GPT-2 is trained from scratch, the loss counting the
assistant's tokens only; by default it also reads the retrieval bot's answer and learns to adapt it
("retrieve and refine", model.retrieve), and a copy head lets it take names and numbers from the
conversation by pointing at them (model.copy). Any local causal-LM checkpoint (through its chat template
when it has one) or seq2seq checkpoint fine-tunes through the same path with its own tokenizer.

Data: JSONL chat messages, CSV/TSV context/response pairs, or YAML/JSON lists of turns (reading.py); every
assistant turn is a target with the turns before it as context, cleaned and split by conversation
(data.py). The model is scored with perplexity, chrF/BLEU, distinct-1/2 and the share of empty or looping
responses (metrics.py) beside a TF-IDF retrieval bot and a most-frequent-response bot (baselines.py). The
run is self-contained: tokenizer, model config and the retrieval memory live in the run's state, so
evaluate, predict and `dlkit chat` never need the training data.

Files: recipe.py (the hooks), reading.py (formats), data.py (examples, cleaning, splits, datasets, predict
inputs), model.py (tokenizer, layouts, building, decoding), copying.py (the scratch model's copy head,
model.copy), metrics.py, baselines.py.
"""

from dlkit.registry import lazy_exports

RECIPE_META = {  # what `dlkit recipes` lists, without importing torch (dlkit/registry.py)
    "name": "nlp-chat",
    "task": "dialogue (chatbot)",
    "description": "Answer conversations with a small GPT trained from scratch, or a local checkpoint.",
    "default_model": "gpt-scratch",
    "sample_data": "sample_data/nlp_chat",
    "monitor": "chrf",  # `dlkit info`: monitored under the default config
}
__getattr__ = lazy_exports(__name__, NlpChat="recipe", recipe_config="config")

__all__ = ["recipe_config", "NlpChat"]
