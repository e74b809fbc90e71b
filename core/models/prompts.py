"""Prompts as AUTOMATIC1111 users write them, for the Stable Diffusion families (SD 1.x, SD 2.x, SDXL).

Syntax (the rules of A1111's `modules/prompt_parser.py`, written here from its documented behaviour):
    (text)        attention x1.1; nested brackets multiply: ((text)) is x1.21
    (text:1.3)    attention x1.3 (any decimal, also below 1 or negative)
    [text]        attention /1.1
    \\( \\) \\[ \\] \\\\  the literal character
    BREAK         (capitals, a word of its own) ends the current 75-token chunk
A closing bracket with no opener is text; an opener that is never closed weights the rest of the prompt
(as A1111 does); `:1.3)` outside round brackets, or a weight that is no number, stays text.

Encoding (A1111's `modules/sd_hijack_clip.py`): the weighted pieces are tokenized one by one and laid into
chunks of 75 tokens (a chunk that fills up within 20 tokens of a comma is cut after that comma); each
chunk becomes [start] + tokens + [end] + padding = 77 tokens and goes through the text encoder on its
own; each token's vectors are multiplied by its weight, then the whole chunk is scaled back to its
original mean; the chunks are concatenated along the sequence. Prompts and negative prompts are padded
to the same number of chunks with the encoding of the empty prompt. SDXL: the penultimate hidden states
of both encoders, concatenated (as diffusers' `encode_prompt` with clip_skip None), the pooled vector
from the second encoder on the first chunk.

A plain prompt of at most 75 tokens is left to the pipeline (`embed_call` returns the call unchanged),
so its pictures are exactly those of diffusers.
"""

from __future__ import annotations

import re
from typing import Any

import torch

CHUNK = 75  # prompt tokens per chunk; with start and end that is CLIP's 77 positions
COMMA_BACKTRACK = 20  # A1111's default `comma_padding_backtrack`
ROUND, SQUARE = 1.1, 1 / 1.1
BREAK = None  # the weight that marks a BREAK in parse()'s output

_TOKEN = re.compile(r"""
    \\[()\[\]\\]?        # an escape (a lone backslash is dropped, as in A1111)
  | \( | \[              # openers
  | :\s*([+-]?[.\d]+)\s*\)  # a weight that closes a round bracket
  | \) | \]              # closers
  | [^\\()\[\]:]+        # plain text
  | :                    # a colon that is no weight
""", re.X)
_BREAK = re.compile(r"\s*\bBREAK\b\s*")


def parse(text: str) -> list[tuple[str, float | None]]:
    """Split an A1111 prompt into (text, weight) pieces in order; a BREAK is ("BREAK", None).

    Neighbouring pieces of equal weight are merged; "" gives [("", 1.0)].
    >>> parse("a (red:1.5) [cat]")  # [('a ', 1.0), ('red', 1.5), (' ', 1.0), ('cat', 0.909...)]
    """
    pieces: list[list[Any]] = []
    rounds: list[int] = []
    squares: list[int] = []

    def scale(start: int, factor: float) -> None:
        for piece in pieces[start:]:
            if piece[1] is not BREAK:
                piece[1] *= factor

    for match in _TOKEN.finditer(text):
        token, weight = match.group(0), match.group(1)
        if token.startswith("\\"):
            pieces.append([token[1:], 1.0])
        elif token in "([":
            (rounds if token == "(" else squares).append(len(pieces))
        elif weight is not None and rounds and _number(weight) is not None:
            scale(rounds.pop(), _number(weight))
        elif token == ")" and rounds:
            scale(rounds.pop(), ROUND)
        elif token == "]" and squares:
            scale(squares.pop(), SQUARE)
        else:
            for i, part in enumerate(_BREAK.split(token)):
                if i:
                    pieces.append(["BREAK", BREAK])
                pieces.append([part, 1.0])
    for start in rounds:
        scale(start, ROUND)
    for start in squares:
        scale(start, SQUARE)
    merged: list[list[Any]] = []
    for piece in pieces:
        if piece[1] is not BREAK and piece[0] == "":
            continue
        if merged and piece[1] is not BREAK and merged[-1][1] == piece[1]:
            merged[-1][0] += piece[0]
        else:
            merged.append(piece)
    return [(t, w) for t, w in merged] or [("", 1.0)]


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def chunks(tokenizer, text: str) -> list[tuple[list[int], list[float]]]:
    """The prompt as A1111 chunks: each (77 token ids, 77 weights), [start] + tokens + [end] + pad."""
    comma = tokenizer.get_vocab().get(",</w>")
    pieces = parse(text)
    texts = [t for t, w in pieces if w is not BREAK]
    ids = iter(tokenizer(texts, truncation=False, add_special_tokens=False).input_ids) if texts else iter(())
    done: list[tuple[list[int], list[float]]] = []
    tokens: list[int] = []
    weights: list[float] = []
    last_comma = -1

    def close() -> None:
        nonlocal tokens, weights, last_comma
        pad = CHUNK - len(tokens)
        done.append(([tokenizer.bos_token_id] + tokens + [tokenizer.eos_token_id] + [tokenizer.pad_token_id] * pad,
                      [1.0] + weights + [1.0] * (pad + 1)))
        tokens, weights, last_comma = [], [], -1

    for _, weight in pieces:
        if weight is BREAK:
            close()
            continue
        for token in next(ids):
            if token == comma:
                last_comma = len(tokens)
            elif len(tokens) == CHUNK and last_comma != -1 and len(tokens) - last_comma <= COMMA_BACKTRACK:
                keep, move, moved = last_comma + 1, tokens[last_comma + 1:], weights[last_comma + 1:]
                tokens, weights = tokens[:keep], weights[:keep]
                close()
                tokens, weights = move, moved
            if len(tokens) == CHUNK:
                close()
            tokens.append(token)
            weights.append(weight)
    if tokens or not done:
        close()
    return done


def needs_embeddings(tokenizer, text: str) -> bool:
    """True when the pipeline would read `text` otherwise than A1111: it has weights, brackets, escapes
    or BREAK, or is over 75 tokens (the pipeline would cut it)."""
    if parse(text) != [(text, 1.0)]:
        return True
    return len(tokenizer(text, truncation=False, add_special_tokens=False).input_ids) > CHUNK


def _weighted(z: torch.Tensor, weights: list[float]) -> torch.Tensor:
    """`z` `(1, 77, C)` times each token's weight, then scaled back to the mean it had (A1111's "Original")."""
    if all(w == 1.0 for w in weights):
        return z
    mean = z.mean()
    z = z * torch.tensor(weights, dtype=z.dtype, device=z.device)[None, :, None]
    return z * (mean / z.mean())


def _encode_chunk(pipe, ids: list[int], weights: list[float], xl: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One chunk of each of the pipeline's tokenizers -> ((1, 77, C) weighted states, pooled (1, P) or None)."""
    device = pipe._execution_device
    encoders = [pipe.text_encoder, pipe.text_encoder_2] if xl else [pipe.text_encoder]
    states, pooled = [], None
    for encoder, token_ids in zip(encoders, ids):
        if encoder is None:
            continue
        batch = torch.tensor([token_ids], device=device)
        if xl:
            out = encoder(batch, output_hidden_states=True)
            pooled, z = out[0], out.hidden_states[-2]
        else:
            mask = None
            if getattr(encoder.config, "use_attention_mask", False):
                end = token_ids.index(pipe.tokenizer.eos_token_id)
                mask = (torch.arange(len(token_ids), device=device) <= end).long()[None]
            z = encoder(batch, attention_mask=mask)[0]
        states.append(_weighted(z, weights))
    return torch.cat(states, dim=-1), pooled


def _tokenizers(pipe) -> list:
    xl = getattr(pipe, "text_encoder_2", None) is not None
    first = pipe.tokenizer if pipe.tokenizer is not None else pipe.tokenizer_2
    return [first, pipe.tokenizer_2] if xl else [pipe.tokenizer]


def encode(pipe, text: str) -> tuple[list[torch.Tensor], torch.Tensor | None]:
    """`text` -> (one `(1, 77, C)` tensor per chunk, pooled `(1, P)` of the first chunk for SDXL, else None)."""
    xl = getattr(pipe, "text_encoder_2", None) is not None
    per_tokenizer = [chunks(tokenizer, text) for tokenizer in _tokenizers(pipe)]
    out, pooled = [], None
    for i, parts in enumerate(zip(*per_tokenizer)):
        z, p = _encode_chunk(pipe, [ids for ids, _ in parts], parts[0][1], xl)
        out.append(z)
        pooled = p if i == 0 else pooled
    return out, pooled


def embed(pipe, prompts: list[str], negatives: list[str]) -> dict[str, torch.Tensor]:
    """Prompt embeddings for a Stable Diffusion pipeline call, A1111 style: `prompt_embeds` and
    `negative_prompt_embeds` `(N, 77 * chunks, C)` (and for SDXL `pooled_prompt_embeds`,
    `negative_pooled_prompt_embeds` `(N, P)`), every prompt padded to the longest with empty chunks."""
    encoded: dict[str, tuple[list[torch.Tensor], torch.Tensor | None]] = {}
    for text in {*prompts, *negatives, ""}:
        encoded[text] = encode(pipe, text)
    length = max(len(encoded[t][0]) for t in (*prompts, *negatives))
    empty = encoded[""][0][0]

    def stack(texts: list[str]) -> tuple[torch.Tensor, torch.Tensor | None]:
        rows = [torch.cat(encoded[t][0] + [empty] * (length - len(encoded[t][0])), dim=1) for t in texts]
        pooled = [encoded[t][1] for t in texts]
        return torch.cat(rows), (torch.cat(pooled) if pooled[0] is not None else None)

    (z, pooled), (neg, neg_pooled) = stack(prompts), stack(negatives)
    kwargs = {"prompt_embeds": z, "negative_prompt_embeds": neg}
    if pooled is not None:
        kwargs |= {"pooled_prompt_embeds": pooled, "negative_pooled_prompt_embeds": neg_pooled}
    return kwargs


def reads_chunks(family: str, pipe) -> bool:
    """True for the pipelines whose prompts this module encodes: not the emoji model (its own pipeline),
    and CLIP text encoders of 77 positions, as in SD 1.x, SD 2.x and SDXL (tiny test models included)."""
    if family == "emoji" or getattr(pipe, "max_tokens", None) is not None:
        return False
    pairs = [(getattr(pipe, t, None), getattr(pipe, e, None))
             for t, e in (("tokenizer", "text_encoder"), ("tokenizer_2", "text_encoder_2"))]
    pairs = [(t, e) for t, e in pairs if e is not None]
    return bool(pairs) and all(t is not None and getattr(t, "model_max_length", None) == CHUNK + 2 and
                               type(e).__name__.startswith("CLIPTextModel") for t, e in pairs)


def embed_call(pipe, call: dict[str, Any]) -> dict[str, Any]:
    """`call` with `prompt`/`negative_prompt` (lists of equal length) replaced by embeddings when one of
    them needs A1111 reading (see needs_embeddings); otherwise `call` itself, for diffusers to encode.
    Only for pipelines where reads_chunks() is true."""
    prompts, negatives = call.get("prompt"), call.get("negative_prompt")
    if not isinstance(prompts, list):
        return call
    negatives = negatives if isinstance(negatives, list) else [negatives or ""] * len(prompts)
    tokenizer = _tokenizers(pipe)[0]
    if not any(needs_embeddings(tokenizer, text) for text in (*prompts, *negatives)):
        return call
    rest = {k: v for k, v in call.items() if k not in ("prompt", "negative_prompt")}
    return rest | embed(pipe, prompts, negatives)
