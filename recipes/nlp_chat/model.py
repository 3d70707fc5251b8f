"""The dialogue model: a small GPT-2 trained from scratch with a byte-level BPE and role markers, or a local
causal-LM (with its chat template when it has one) or seq2seq checkpoint; how conversations become token
ids (with the loss on the assistant's tokens only), and decoding.

How a conversation is laid out, by model kind:
- `markers` (the default): `<s> <|user|> text </s> <|assistant|> text </s> ...`; the role markers are
  special tokens of the tokenizer fitted on the training conversations;
- `template`: a checkpoint's own chat template (`apply_chat_template`, generation prompt included);
- `plain`: a causal checkpoint without a template: `User: text` / `Assistant: text` lines;
- `seq2seq`: the context as `User: ...` lines into the encoder, the response as the decoder's target.
The prompt keeps the newest turns that fit in `data.max_length` (the oldest are dropped first, a system
prompt last), leaving room for the response.

With `model.retrieve` ("retrieve and refine", Weston et al. 2018) the prompt ends with a hint: the response
the retrieval bot gives for this context, after the turns (`<|retrieved|> text </s>` for markers, a
`Similar answer:` line for plain and seq2seq layouts, a note closing the last user turn for a template).
The model learns to keep what fits of it and to change the rest (an order number, a town) from the turns.
"""

from __future__ import annotations

import torch
from dlkit_recipes.nlp_chat.config import SCRATCH

from dlkit import hf
from dlkit.errors import UserError

MARKERS = {"system": "<|system|>", "user": "<|user|>", "assistant": "<|assistant|>"}
NAMES = {"system": "System", "user": "User", "assistant": "Assistant"}
HINT = "<|retrieved|>"
HINT_NAME = "Similar answer"


def scratch_tokenizer(texts: list[str], vocab_size: int, min_frequency: int = 2):
    """Byte-level BPE fitted on the training turns (case kept), the role and hint markers as special
    tokens. Only pieces seen `min_frequency` times become tokens: an order number or a name met in one
    conversation stays spelled in smaller pieces, as the new ones the model must copy at test time are
    (a whole-word token of each training number would teach it to copy one token, never a spelling)."""
    tokenizer = hf.train_tokenizer(
        texts, vocab_size, kind="bpe", lowercase=False, min_frequency=min_frequency
    )
    tokenizer.add_special_tokens({"additional_special_tokens": [*MARKERS.values(), HINT]})
    return tokenizer


class ChatFormat:
    """Conversation -> token ids for one model kind (see the module docstring)."""

    def __init__(self, tokenizer, kind: str, max_length: int, max_response: int):
        self.tok, self.kind = tokenizer, kind
        self.max_response = min(max_response, max_length // 2)
        self.max_prompt = max_length - self.max_response
        self.eos = tokenizer.eos_token_id
        self.markers = {role: tokenizer.convert_tokens_to_ids(m) for role, m in MARKERS.items()}
        self._memo: dict[str, list[int]] = {}

    def _ids(self, text: str) -> list[int]:
        """A text's ids, memoised: turns recur in every later context of their conversation, and templated
        replies and retrieved responses recur across conversations."""
        if text not in self._memo:
            self._memo[text] = self.tok(text, add_special_tokens=False)["input_ids"]
        return list(self._memo[text])

    def _render(self, turns: list[tuple[str, str]], hint: str | None = None) -> list[int]:
        if self.kind == "markers":
            ids = [self.tok.bos_token_id]
            for role, text in turns:
                ids += [self.markers[role], *self._ids(text), self.eos]
            if hint is not None:
                ids += [self.tok.convert_tokens_to_ids(HINT), *self._ids(hint), self.eos]
            return ids + [self.markers["assistant"]]
        if self.kind == "template":
            messages = [{"role": r, "content": t} for r, t in turns]
            if hint is not None and messages:
                note = f"\n\n({HINT_NAME.lower()}: {hint})"
                messages[-1] = {**messages[-1], "content": messages[-1]["content"] + note}
            text = self.tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            return self._ids(text)
        lines = "".join(f"{NAMES[r]}: {t}\n" for r, t in turns)
        if hint is not None:
            lines += f"{HINT_NAME}: {hint}\n"
        if self.kind == "seq2seq":
            return self.tok(lines.strip(), add_special_tokens=True)["input_ids"]
        return self._ids(lines + "Assistant:")

    def prompt(self, context: list[tuple[str, str]], hint: str | None = None) -> list[int]:
        """The ids of the context and hint, without the oldest turns while too long (cut on the left as a
        last resort)."""
        system = [t for t in context if t[0] == "system"][:1] if context and context[0][0] == "system" else []
        rest = context[len(system) :]
        for start in range(len(rest) + 1):
            ids = self._render(system + rest[start:], hint)
            if len(ids) <= self.max_prompt:
                return ids
        ids = self._render(rest[-1:], hint) if rest else ids
        return ids[-self.max_prompt :]

    def reply(self, context: list[tuple[str, str]], response: str) -> list[int]:
        """The response's ids as the model must produce them, with the end of its turn."""
        if self.kind == "seq2seq":
            return self.tok(text_target=response)["input_ids"][: self.max_response]
        if self.kind == "template":
            messages = [{"role": r, "content": t} for r, t in context]
            head = self.tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            full = self.tok.apply_chat_template(
                [*messages, {"role": "assistant", "content": response}], tokenize=False
            )
            ids = self._ids(full[len(head) :]) if full.startswith(head) else self._ids(response) + [self.eos]
        else:
            ids = self._ids(response if self.kind == "markers" else " " + response) + [self.eos]
        return ids[: self.max_response]

    def encode(
        self, context, response: str | None, hint: str | None = None
    ) -> tuple[list[int] | None, list[int] | None, list[int]]:
        """(input_ids, labels, prompt_ids): labels are -100 on every token but the response's; `hint` is
        the retrieved response (model.retrieve) or None."""
        prompt = self.prompt(context, hint)
        if response is None:
            return None, None, prompt
        reply = self.reply(context, response)
        if self.kind == "seq2seq":
            return prompt, reply, prompt
        return prompt + reply, [-100] * len(prompt) + reply, prompt

    def stop_ids(self) -> list[int]:
        """Tokens that end a reply: the end of the turn, and (for markers) the start of another turn."""
        extra = [self.markers["user"], self.markers["system"]] if self.kind == "markers" else []
        return [i for i in [self.eos, *extra] if i is not None]


# --- fitting and building ---------------------------------------------------------------------------
def _scratch_config(cfg: dict, tokenizer) -> dict:
    from transformers import GPT2Config

    m = cfg["model"]
    if m["hidden"] % m["heads"]:
        raise UserError(
            f"model.hidden={m['hidden']} is not a multiple of model.heads={m['heads']}",
            "pick a width divisible by the number of heads (e.g. 128 and 4)",
        )
    return GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=cfg["data"]["max_length"],
        n_embd=m["hidden"],
        n_layer=m["layers"],
        n_head=m["heads"],
        n_inner=m["ffn"],
        resid_pdrop=m["dropout"],
        embd_pdrop=m["dropout"],
        attn_pdrop=m["dropout"],
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        copy_mechanism=m["copy"],
        copy_markers=tokenizer.convert_tokens_to_ids([*MARKERS.values(), HINT]),
    )


def _checkpoint(m: dict):
    """A checkpoint's config, tokenizer (a padding token added from its end token if it has none) and kind."""
    config = hf.load_config(m["name"], builtin=SCRATCH)
    name = m["tokenizer_name"] or m["name"]
    tokenizer = hf.load_tokenizer(name, "model.tokenizer_name" if m["tokenizer_name"] else "model.name")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.eos_token_id is None or tokenizer.pad_token_id is None:
        raise UserError(
            f"tokenizer '{name}' defines no end-of-sequence token",
            "use a tokenizer with eos_token set (the one saved with a causal or seq2seq model)",
        )
    if len(tokenizer) > getattr(config, "vocab_size", len(tokenizer)):
        raise UserError(
            f"the tokenizer has {len(tokenizer)} tokens but model '{m['name']}' embeds only "
            f"{config.vocab_size}",
            "use the tokenizer saved with that model (model.tokenizer_name='' or its folder)",
        )
    if config.is_encoder_decoder:
        kind = "seq2seq"
    else:
        kind = "template" if getattr(tokenizer, "chat_template", None) else "plain"
    return config, tokenizer, kind


def fit(cfg: dict, texts: list[str]) -> tuple[dict, object]:
    """The state's model part (kind, tokenizer, configs) and the tokenizer, from the training turns."""
    m = cfg["model"]
    if m["name"] == SCRATCH:
        tokenizer = scratch_tokenizer(texts, m["vocab_size"], m["min_frequency"])
        config, kind = _scratch_config(cfg, tokenizer), "markers"
    else:
        config, tokenizer, kind = _checkpoint(m)
    from transformers import GenerationConfig

    state = {
        "kind": kind,
        "tokenizer": hf.tokenizer_state(tokenizer, trained=m["name"] == SCRATCH),
        "model": {
            "source": m["name"] if m["name"] == SCRATCH else hf.source(m["name"]),
            "config": config.to_dict(),
            "generation": GenerationConfig.from_model_config(config).to_dict(),
        },
    }
    return state, tokenizer


def make_format(state: dict, tokenizer, cfg: dict) -> ChatFormat:
    return ChatFormat(tokenizer, state["kind"], cfg["data"]["max_length"], cfg["generate"]["max_new_tokens"])


def build(state: dict, init_from: str | None) -> torch.nn.Module:
    """The model from the stored config; a checkpoint's pretrained weights only when `init_from` names it."""
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, GenerationConfig

    hf.quiet()
    auto = AutoModelForSeq2SeqLM if state["kind"] == "seq2seq" else AutoModelForCausalLM
    if init_from is not None:
        model = hf.from_pretrained(auto, init_from, dtype=torch.float32)
    elif state["model"]["config"].get("copy_mechanism"):
        from dlkit_recipes.nlp_chat.copying import CopyGPT2

        model = hf.from_config(CopyGPT2, state["model"]["config"])
    else:
        model = hf.from_config(auto, state["model"]["config"])
    model.generation_config = GenerationConfig.from_dict(state["model"]["generation"])
    return model


# --- decoding -------------------------------------------------------------------------------------------
def generation_kwargs(g: dict, strategy: str) -> dict:
    """`generate` arguments for greedy, beam or sampling decoding from the `generate.*` keys."""
    kwargs = {
        "max_new_tokens": g["max_new_tokens"],
        "min_new_tokens": 1,  # a reply is never empty (the copy head may point at an end of turn)
        "repetition_penalty": g["repetition_penalty"],
    }
    if strategy == "beam":
        return {**kwargs, "num_beams": g["num_beams"], "do_sample": False, "early_stopping": True}
    if strategy == "sample":
        return {
            **kwargs,
            "do_sample": True,
            "num_beams": 1,
            "temperature": g["temperature"],
            "top_k": g["top_k"],
            "top_p": g["top_p"],
        }
    return {**kwargs, "do_sample": False, "num_beams": 1}


def respond(model, fmt: ChatFormat, batch: dict, kwargs: dict, seed: int) -> list[str]:
    """Replies to a batch's padded prompts (left-padded for a decoder-only model, which continues each
    prompt at its end). Sampling restarts from `seed` for every batch (the global RNG is left as it was),
    so a score or a reply never depends on what ran before it."""
    from torch.nn.parallel import DistributedDataParallel

    if isinstance(model, DistributedDataParallel):  # generate is the wrapped module's
        model = model.module
    ids = batch["prompt_ids"]
    limit = getattr(model.config, "n_positions", None) or getattr(model.config, "max_position_embeddings", 0)
    if limit and fmt.kind != "seq2seq":  # a decoder-only model has no positions past its last one
        kwargs = {**kwargs, "max_new_tokens": max(1, min(kwargs["max_new_tokens"], limit - ids.shape[1]))}
    with torch.random.fork_rng(devices=[ids.device] if ids.device.type == "cuda" else []):
        torch.manual_seed(seed)
        out = model.generate(
            input_ids=ids,
            attention_mask=batch["prompt_mask"],
            eos_token_id=fmt.stop_ids(),
            pad_token_id=fmt.tok.pad_token_id,
            **kwargs,
        )
    new = out if fmt.kind == "seq2seq" else out[:, ids.shape[1] :]
    return [text.strip() for text in fmt.tok.batch_decode(new, skip_special_tokens=True)]
