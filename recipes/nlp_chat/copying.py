"""A copy (pointer-generator) head for the scratch GPT-2 (`model.copy`, after See et al. 2017).

A shop's answers repeat what the user said: an order number, a town, a product. A small model trained for
a few minutes learns the answers' templates quickly but writes a detail it must take from the conversation
poorly: a town or number the tokenizer splits into pieces comes out as a frequent one, or misspelt. With
this head every next-token distribution is a learned mix (a gate on the final hidden state) of the
vocabulary softmax and a pointer over the tokens so far (prompt and reply), each pointer weight added to
the probability of the token it points at. The model itself decides, token by token, whether to write from
its vocabulary or to copy, and from where; nothing is pasted in.

The pointer's keys are made of token embeddings only (the token, the CONTEXT tokens before it, and the part
of the conversation it is in: user turn, assistant turn, retrieved answer), its query of the final hidden
state and the last CONTEXT tokens. Spelling a detail on is then pointing at the token that followed the
same tokens earlier, which the head learns in a few hundred steps; and the keys need no cache of their own, so
cached decoding works as usual. The output's `logits` are the log of the mixed probabilities, so the
loss, the perplexity and every decoding strategy (greedy, beam, sampling, repetition penalty) work on it
unchanged.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import GPT2LMHeadModel
from transformers.modeling_outputs import CausalLMOutputWithCrossAttentions

FLOOR = 1e-10  # smallest probability, so its log stays finite
CONTEXT = 3  # tokens before the pointer's target that its query and keys compare
GATE_START = 3.0  # initial logit of the generation share: sigmoid(3) = 0.95


def _shift(ids: torch.Tensor, k: int) -> torch.Tensor:
    """Each position's k-th previous token (the first token stands in before the start)."""
    if k == 0:
        return ids
    return torch.cat([ids[:, :1].expand(-1, k), ids[:, :-k]], dim=1)[:, : ids.shape[1]]


def _unpadded(source: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """`source` with each row's left padding replaced by its first real token, so that a token's CONTEXT
    (`_shift`) is the same whether the batch pads its row or not (a reply must not depend on its batch)."""
    if attention_mask is None or attention_mask.shape != source.shape:
        return source
    first = attention_mask.long().argmax(1, keepdim=True)
    before = torch.arange(source.shape[1], device=source.device) < first
    return torch.where(before, source.gather(1, first), source)


class CopyGPT2(GPT2LMHeadModel):
    """GPT-2 whose next token is a mix of generating from the vocabulary and copying an earlier token.

    `config.copy_markers`: the ids of the role and hint markers; each earlier token's key knows the
    part of the conversation it is in (the marker before it), so the pointer can prefer the user's turn
    to the retrieved answer."""

    def __init__(self, config):
        super().__init__(config)
        width, markers = config.n_embd, list(getattr(config, "copy_markers", []))
        self.register_buffer("markers", torch.tensor(markers, dtype=torch.long), persistent=False)
        ends = [config.bos_token_id, config.pad_token_id]
        fixed = sorted({*markers, *(i for i in ends if i is not None)})
        self.register_buffer("uncopyable", torch.tensor(fixed, dtype=torch.long), persistent=False)
        self.copy_query = nn.Linear(width, width)
        self.copy_norm = nn.LayerNorm(width)  # token embeddings start tiny (GPT-2 init): scale them
        # the query reads the last CONTEXT tokens, a key its token and the CONTEXT tokens before it
        self.copy_reads = nn.ModuleList(nn.Linear(width, width, bias=False) for _ in range(CONTEXT))
        self.copy_keys = nn.ModuleList(nn.Linear(width, width, bias=False) for _ in range(CONTEXT + 1))
        self.copy_part = nn.Embedding(len(markers) + 1, width)
        self.copy_gate = nn.Linear(width, 1)
        self.post_init()

    def _init_weights(self, module):
        """GPT-2's init; the gate starts out generating (copying is learnt as the pointer learns where to
        point: an early copy share starves the vocabulary of gradient and training stalls)."""
        super()._init_weights(module)
        if module is getattr(self, "copy_gate", None):
            nn.init.zeros_(module.weight)
            nn.init.constant_(module.bias, GATE_START)

    @classmethod
    def from_config(cls, config):
        """A fresh model, called as the Auto classes are (dlkit.hf.from_config)."""
        return cls._from_config(config)

    def prepare_inputs_for_generation(self, input_ids, **kwargs):
        """Decoding with a cache feeds only the new token; the copy head also needs every earlier token."""
        inputs = super().prepare_inputs_for_generation(input_ids, **kwargs)
        inputs["source_ids"] = input_ids
        return inputs

    def _embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.copy_norm(self.transformer.wte(ids))

    def _keys(self, source: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """A key per token: the token, the CONTEXT before it and the part it is in (0 = before any marker).
        `context` is `source` without its left padding (`_unpadded`)."""
        is_marker = source[..., None] == self.markers  # (batch, tokens, markers)
        positions = torch.arange(source.shape[1], device=source.device).expand_as(source)
        last = torch.where(is_marker.any(-1), positions, -1).cummax(dim=1).values  # newest marker so far
        kind = (is_marker.long().argmax(-1) + 1).gather(1, last.clamp_min(0)) * (last >= 0)
        keys = self.copy_part(kind)
        for k, layer in enumerate(self.copy_keys):
            keys = keys + layer(self._embed(_shift(context, k)))
        return keys

    def _query(self, hidden: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """The state and the last CONTEXT tokens themselves: writing a detail on means pointing at the token
        that followed these tokens earlier (a match with a key's previous ones), and three tell "the 10am to
        (4pm)" from "the 9am to (6pm)" and the hint's "can return (it)" from the user's "to return (a)"."""
        n, query = hidden.shape[1], self.copy_query(hidden)
        for k, layer in enumerate(self.copy_reads):
            query = query + layer(self._embed(_shift(context, k)[:, -n:]))
        return query

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        position_ids=None,
        source_ids=None,
        logits_to_keep=0,
        **kwargs,
    ):
        # position_ids named in the signature: `generate` then derives them from the attention mask, so a
        # left-padded prompt's positions (and its reply) do not depend on the batch it is in
        out = self.transformer(input_ids, attention_mask=attention_mask, position_ids=position_ids, **kwargs)
        hidden = out.last_hidden_state
        if logits_to_keep:  # generation scores only the newest position
            hidden = hidden[:, -logits_to_keep:]
        source = input_ids if source_ids is None else source_ids
        n, length = hidden.shape[1], source.shape[1]  # the hidden states are the last n tokens
        context = _unpadded(source, attention_mask)
        scores = self._query(hidden, context) @ self._keys(source, context).transpose(1, 2)
        scores = scores / hidden.shape[-1] ** 0.5
        visible = torch.arange(length, device=source.device) <= torch.arange(
            length - n, length, device=source.device
        ).unsqueeze(1)  # (n, length): a token points only at itself and earlier tokens
        # words and the end of a turn (a reply that follows the hint ends where the hint ends), never a
        # role marker: starting another turn is the vocabulary's call
        visible = visible & ~torch.isin(source, self.uncopyable)[:, None, :]
        if attention_mask is not None:
            visible = visible & attention_mask[:, None, :].bool()
        pointer = scores.float().masked_fill(~visible, -1e9).softmax(-1)
        gate = torch.sigmoid(self.copy_gate(hidden).float())  # the share of generating
        gate = torch.where(visible.any(-1, keepdim=True), gate, 1.0)  # nothing to copy yet
        probs = self.lm_head(hidden).float().softmax(-1) * gate
        probs = probs.scatter_add(-1, source[:, None, :].expand(-1, n, -1), pointer * (1 - gate))
        return CausalLMOutputWithCrossAttentions(logits=probs.clamp_min(FLOOR).log(), cache=out.cache)
