"""nlp-chat's default config, light (nothing heavy imported) so that `dlkit info` reads it without
torch; `Recipe.config()` returns it. Constants it shares with the heavy modules live here.
"""

from __future__ import annotations

from dlkit_recipes.nlp_translation.config import BLEU_TOKENIZERS

from dlkit.config import opt, scratch_or_finetune_lr

SCRATCH = "gpt-scratch"
SCRATCH_LR, FINETUNE_LR = 1e-3, 5e-5
STRATEGIES = ("greedy", "beam", "sample")


def recipe_config() -> dict:
    return {
        "data": {
            "batch_size": 32,
            "encoding": opt("utf-8", "text encoding of the data files"),
            "context_column": opt("context", "CSV/TSV: column holding the context (the user's turn)"),
            "response_column": opt("response", "CSV/TSV: column holding the assistant's response"),
            "turn_separator": opt(
                "",
                "CSV/TSV: text separating earlier turns inside a context cell, e.g. ' ||| ' ('' = the "
                "context is one user turn)",
            ),
            "max_turns": opt(6, "earlier turns kept as context for each response (0 = all)"),
            "max_chars": opt(
                1000, "turns longer than this many characters are not used as targets (0 = off)"
            ),
            "max_length": opt(
                256, "tokens per example: context (newest turns first) and response, half each at most"
            ),
            "max_val_examples": opt(
                500, "cap on validation exchanges (generated at every check; evenly spaced; 0 = no cap)"
            ),
        },
        "model": {
            "name": opt(
                SCRATCH,
                f"'{SCRATCH}' = small GPT-2 trained from scratch with a byte-level BPE fitted on the "
                "conversations; or a local causal-LM or seq2seq checkpoint folder (or cached hub name)",
            ),
            "tokenizer_name": opt("", "tokenizer folder or hub name for a checkpoint ('' = its own)"),
            "vocab_size": opt(2000, f"subword vocabulary of the tokenizer trained for '{SCRATCH}'"),
            "min_frequency": opt(
                8,
                f"'{SCRATCH}' tokenizer: pieces seen fewer times stay split (rare names and numbers are "
                "spelled in pieces, as new ones are)",
            ),
            "layers": opt(2, f"transformer layers of '{SCRATCH}'"),
            "hidden": opt(128, f"model width of '{SCRATCH}'"),
            "heads": opt(4, f"attention heads of '{SCRATCH}'"),
            "ffn": opt(512, f"feed-forward width of '{SCRATCH}'"),
            "dropout": 0.1,
            "copy": opt(
                True,
                f"'{SCRATCH}': a copy (pointer-generator) head: each next token mixes the vocabulary "
                "with a pointer at an earlier token, so names and numbers are copied from the "
                "conversation rather than written from memory",
            ),
            "retrieve": opt(
                True,
                "retrieve and refine: the model also reads the response the retrieval bot gives (that of "
                "the nearest training context) and learns to adapt it to the conversation; false = the "
                "conversation only",
            ),
            "retrieve_train": opt(
                3,
                "with model.retrieve: each training exchange is seen this many times, with each of the "
                "responses of its nearest exchanges in other conversations",
            ),
            "retrieve_noise": opt(
                0.0,
                "with model.retrieve: the share of training hints replaced by the response of a random "
                "exchange, so the model learns to check the retrieved answer against the conversation",
            ),
        },
        "loss": {
            "name": opt(
                "cross_entropy",
                "training loss (next-token cross-entropy on assistant tokens)",
                ["cross_entropy"],
            ),
        },
        "train": {
            "min_steps": 600,
            "warmup": 0.1,
            "patience": 8,
            "lr": scratch_or_finetune_lr(SCRATCH, SCRATCH_LR, FINETUNE_LR),
        },
        "generate": {
            "strategy": opt(
                "greedy", "decoding for the final evaluation, predict and chat", list(STRATEGIES)
            ),
            "num_beams": opt(4, "beam width when strategy=beam"),
            "temperature": opt(0.8, "sampling temperature when strategy=sample (lower = safer)"),
            "top_k": opt(50, "sample from the k most likely tokens (0 = all) when strategy=sample"),
            "top_p": opt(0.95, "sample from the smallest set of tokens with this probability mass"),
            "repetition_penalty": opt(1.0, "penalise tokens already in the context or reply (1 = off)"),
            "max_new_tokens": opt(64, "longest response in tokens"),
        },
        "eval": {
            "bleu_tokenize": opt(
                "13a",
                "sacreBLEU tokenizer (zh for Chinese, char for other unsegmented scripts)",
                BLEU_TOKENIZERS,
            ),
            "examples": opt(5, "example exchanges (context, reference, model, retrieval) in the evaluation"),
        },
    }
