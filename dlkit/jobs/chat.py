"""`dlkit chat RUN`: talk to a trained dialogue model in the terminal, or answer the lines of a pipe.

At a terminal it is an interactive session: a rich prompt, the conversation kept (the recipe keeps the
newest turns that fit the model's context), `/reset` to start over, `/exit` or Ctrl-D to leave. With
input from a pipe or file every non-empty line is the user's next turn and each answer is one line on
stdout (JSON lines with --json), so `echo hi | dlkit chat RUN` answers once and exits 0. Generation keys
(`generate.strategy=sample generate.temperature=0.7`...) are set like any inference-safe override.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from dlkit import console
from dlkit.errors import UserError
from dlkit.jobs.common import load_best, open_run
from dlkit.recipe import Recipe

COMMANDS = {"/reset": "start a new conversation", "/exit": "leave (also /quit or Ctrl-D)"}
MAX_HISTORY = 200  # turns remembered; the recipe uses the newest that fit its context window


def answerer(run_path: Path, overrides: list[str]) -> tuple[Callable[[list[dict]], str], str]:
    """A function: conversation so far -> the model's reply, and the run's recipe name."""
    import torch

    from dlkit.engine.device import amp_dtype, autocast, move

    run, recipe = open_run(run_path, overrides)
    if type(recipe).chat_batch is Recipe.chat_batch:
        raise UserError(
            f"runs of recipe '{run.recipe}' do not chat",
            "dlkit chat works with recipes that answer conversations, such as nlp-chat",
        )
    state = run.state()
    recipe.setup(state, fresh=False)
    model, device = load_best(run, recipe, state)
    model.eval()
    dtype = amp_dtype(recipe.cfg["train"]["amp"], device)

    @torch.inference_mode()
    def answer(turns: list[dict]) -> str:
        batch = move(recipe.chat_batch(turns), device)
        ids = batch.pop("id")
        with autocast(device, dtype):
            outputs = recipe.predict_step(model, batch)
        return recipe.to_records(ids, outputs, state)[0]["response"]

    return answer, run.recipe


def chat(
    run_path: Path,
    overrides: list[str],
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    json_lines: bool = False,
) -> dict:
    """Run the session until /exit or the end of input; returns how many replies were given."""
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    answer, recipe = answerer(run_path, overrides)
    interactive = stdin.isatty() and not json_lines
    if interactive:
        console.info(
            f"[bold]chatting with {run_path}[/] ({recipe}); "
            + ", ".join(f"{c} {what}" for c, what in COMMANDS.items())
        )
    history: list[dict] = []
    replies = 0
    while True:
        line = _read(stdin, interactive)
        if line is None:
            break
        text = line.strip()
        if not text:
            continue
        if text.lower() in ("/exit", "/quit"):
            break
        if text.lower() == "/reset":
            history = []
            if interactive:
                console.info("[dim](new conversation)[/]")
            continue
        if text.startswith("/") and " " not in text:
            console.warn(
                f"unknown command {text}; " + ", ".join(f"{c}: {what}" for c, what in COMMANDS.items())
            )
            continue
        history = [*history, {"role": "user", "content": text}][-MAX_HISTORY:]
        reply = answer(history)
        history.append({"role": "assistant", "content": reply})
        replies += 1
        _write(stdout, text, reply, interactive, json_lines)
    if interactive:
        console.err.print()
    return {"run": str(run_path), "replies": replies}


def _read(stdin: TextIO, interactive: bool) -> str | None:
    """The next line, or None at the end of input (Ctrl-D at a terminal)."""
    if not interactive:
        line = stdin.readline()
        return line if line else None
    try:
        return console.err.input("[bold green]you[/] > ")
    except EOFError:
        return None


def _write(stdout: TextIO, prompt: str, reply: str, interactive: bool, json_lines: bool) -> None:
    if interactive:
        from rich.markup import escape

        console.err.print(f"[bold cyan]bot[/] > {escape(reply)}")
        return
    stdout.write((json.dumps({"prompt": prompt, "response": reply}) if json_lines else reply) + "\n")
    stdout.flush()
