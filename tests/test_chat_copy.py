"""nlp-chat's copy (pointer-generator) head: a proper distribution, the same replies with and without the
decoding cache, a gate that starts out generating, and it learns to copy numbers it never saw in training."""

from __future__ import annotations

import pytest
import torch

PAD, BOS, EOS, USER, ASSISTANT = 0, 1, 2, 3, 4
DIGITS = list(range(8, 40))  # "pieces" of order numbers
MARKERS = [USER, ASSISTANT, 5, 6]


def _config(**extra):
    from transformers import GPT2Config

    return GPT2Config(
        vocab_size=40,
        n_positions=32,
        n_embd=32,
        n_layer=1,
        n_head=2,
        n_inner=64,
        bos_token_id=BOS,
        eos_token_id=EOS,
        pad_token_id=PAD,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        **extra,
    )


def _copy_model(seed: int = 0):
    from dlkit_recipes.nlp_chat.copying import CopyGPT2

    torch.manual_seed(seed)
    return CopyGPT2.from_config(_config(copy_mechanism=True, copy_markers=MARKERS))


def _dialogues(n: int, pieces: list[int], generator: torch.Generator) -> torch.Tensor:
    """`<s> <|user|> d1..d4 </s> <|assistant|> d1..d4 </s>`: the reply repeats the user's number."""
    rows = []
    for _ in range(n):
        pick = torch.randperm(len(pieces), generator=generator)[:4].tolist()
        number = [pieces[i] for i in pick]
        rows.append([BOS, USER, *number, EOS, ASSISTANT, *number, EOS])
    return torch.tensor(rows)


def test_copy_head_gives_probabilities_and_decodes_the_same_with_and_without_the_cache():
    model = _copy_model().eval()
    ids = torch.randint(8, 40, (2, 9))
    ids[0, :3] = PAD  # left padding, as generation pads prompts
    mask = (ids != PAD).long()
    with torch.no_grad():
        probs = model(input_ids=ids, attention_mask=mask).logits.exp()
        assert torch.allclose(probs.sum(-1)[1], torch.ones(9), atol=1e-5)
        for kwargs in ({"num_beams": 1}, {"num_beams": 3}, {"do_sample": True, "top_k": 5}):
            replies = []
            for cache in (True, False):
                torch.manual_seed(1)
                replies.append(
                    model.generate(
                        input_ids=ids,
                        attention_mask=mask,
                        max_new_tokens=6,
                        pad_token_id=PAD,
                        eos_token_id=EOS,
                        use_cache=cache,
                        **kwargs,
                    )
                )
            assert torch.equal(*replies), kwargs


def test_a_left_padded_prompt_gets_the_reply_it_gets_alone():
    """A reply never depends on its batch: positions come from the attention mask and the pointer's
    context ignores the padding (evaluate's data.batch_size must not change chrF)."""
    model = _copy_model().eval()
    with torch.no_grad():
        torch.nn.init.constant_(model.copy_gate.bias, 0.0)  # copying and generating weigh alike
    short = torch.tensor([[BOS, USER, 9, 10, 11, EOS, ASSISTANT]])
    long = torch.tensor([[BOS, USER, 20, 21, 22, 23, 24, 25, EOS, ASSISTANT]])
    padded = torch.cat([torch.full((1, 3), PAD), short], dim=1)
    batch, mask = torch.cat([long, padded]), torch.cat([torch.ones_like(long), (padded != PAD).long()])
    options = {"max_new_tokens": 6, "min_new_tokens": 6, "pad_token_id": PAD, "eos_token_id": EOS}
    with torch.no_grad():
        alone = model.generate(input_ids=short, attention_mask=torch.ones_like(short), **options)
        together = model.generate(input_ids=batch, attention_mask=mask, **options)
        first_alone = model(input_ids=short, attention_mask=torch.ones_like(short)).logits[0, -1]
        first_together = model(
            input_ids=batch, attention_mask=mask, position_ids=(mask.cumsum(1) - 1).clamp_min(0)
        )
    assert torch.equal(together[1, batch.shape[1] :], alone[0, short.shape[1] :])
    assert torch.allclose(first_together.logits[1, -1], first_alone, atol=1e-5)


def test_the_gate_starts_out_generating():
    model = _copy_model()
    hidden = torch.randn(3, model.config.n_embd)
    assert torch.sigmoid(model.copy_gate(hidden)).min() > 0.9  # a copy share of 5% at first


def test_the_pointer_copies_words_and_ends_of_turns_never_role_markers():
    """Starting another turn is the vocabulary's call; ending one may follow the hint's end."""
    model = _copy_model().eval()
    with torch.no_grad():
        torch.nn.init.constant_(model.copy_gate.bias, -30.0)  # copy only
        ids = torch.tensor([[BOS, USER, 9, 10, 11, EOS, ASSISTANT, 12]])
        probs = model(input_ids=ids).logits.exp()[0]
    for position in range(2, ids.shape[1]):  # once a word has been seen
        assert probs[position, [PAD, BOS, *MARKERS]].sum() < 1e-6
        assert probs[position, ids[0, 2 : position + 1]].sum() > 0.99


def _train(model, data: torch.Tensor, steps: int) -> None:
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    labels = data.clone()
    labels[:, :8] = -100  # loss on the reply only, as nlp-chat trains
    model.train()
    for step in range(steps):
        batch = slice((step * 32) % len(data), (step * 32) % len(data) + 32)
        logits = model(input_ids=data[batch]).logits[:, :-1]
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels[batch, 1:].flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()


def _exact_copies(model, test: torch.Tensor) -> float:
    with torch.no_grad():
        out = model.generate(
            input_ids=test[:, :8], max_new_tokens=5, do_sample=False, pad_token_id=PAD, eos_token_id=EOS
        )
    return (out[:, 8:13] == test[:, 8:13]).all(1).float().mean().item()


def test_copy_head_learns_to_copy_numbers_it_never_saw():
    generator = torch.Generator().manual_seed(0)
    train, test = _dialogues(512, DIGITS, generator), _dialogues(64, DIGITS, generator)
    seen = {tuple(row) for row in train[:, 2:6].tolist()}
    assert not any(tuple(row) in seen for row in test[:, 2:6].tolist())  # new numbers only
    copier = _copy_model()
    _train(copier, train, 150)
    assert _exact_copies(copier, test) >= 0.9


@pytest.mark.parametrize("copy", [True, False])
def test_model_copy_chooses_the_architecture(copy):
    from dlkit_recipes.nlp_chat.model import HINT, MARKERS, build, fit

    cfg = {
        "model": {"name": "gpt-scratch", "vocab_size": 300, "min_frequency": 1, "layers": 1, "hidden": 32,
                  "heads": 2, "ffn": 64, "dropout": 0.0, "copy": copy},
        "data": {"max_length": 64},
    }  # fmt: skip
    state, tokenizer = fit(cfg, ["Where is my order 12345?", "Order 12345 has left."] * 3)
    model = build(state, None)
    assert (type(model).__name__ == "CopyGPT2") is copy
    if copy:
        ids = tokenizer.convert_tokens_to_ids([*MARKERS.values(), HINT])
        assert model.markers.tolist() == ids


def test_retrieve_noise_swaps_hints_for_random_answers_of_other_conversations(tmp_path):
    import json

    from dlkit_recipes.nlp_chat.baselines import Retriever, fit_retrieval
    from dlkit_recipes.nlp_chat.data import read_examples

    pairs = [
        (f"Do you deliver to {t}?", f"Yes, we deliver to {t}.") for t in ["York", "Leeds", "Bath", "Hull"]
    ]
    pairs.append(("Can I pay by card?", "We accept all major cards."))
    lines = [
        json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]})
        for q, a in pairs
    ]
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(lines) + "\n")
    data = {"encoding": "utf-8", "max_turns": 6, "max_chars": 1000}
    examples = read_examples(path, data)[0]
    retrieve = Retriever(fit_retrieval(examples, []))
    clean = retrieve.for_training(examples, 1)
    assert retrieve.for_training(examples, 1, noise=0.0, seed=3) == clean
    noisy = retrieve.for_training(examples, 1, noise=1.0, seed=3)
    assert noisy == retrieve.for_training(examples, 1, noise=1.0, seed=3)  # seeded
    assert noisy != clean
    for example, hints in zip(examples, noisy, strict=True):
        assert example.response not in hints  # never its own answer
