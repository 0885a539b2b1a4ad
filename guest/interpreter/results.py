"""Maps a Jupyter MIME bundle to an /execute `result` line (e2b-protocol.md §4.2)."""

from typing import Any, Dict

# Source MIME type -> key on the `result` line (§4.2, "Format keys on result lines").
MIME_KEYS: Dict[str, str] = {
    "text/plain": "text",
    "text/html": "html",
    "text/markdown": "markdown",
    "image/svg+xml": "svg",
    "image/png": "png",
    "image/jpeg": "jpeg",
    "application/pdf": "pdf",
    "text/latex": "latex",
    "application/json": "json",
    "application/javascript": "javascript",
    "e2b/data": "data",
    "e2b/chart": "chart",
}


def strip_quotes(text: str) -> str:
    """`'abc'` -> `abc`: the repr of a str loses its surrounding quotes (§4.2, `text`)."""
    if len(text) >= 2 and text[0] == "'" and text[-1] == "'":
        return text[1:-1]
    return text


def result_line(data: Dict[str, Any], is_main_result: bool) -> Dict[str, Any]:
    """One `result` line; `is_main_result` is true for execute_result, false for display_data."""
    line: Dict[str, Any] = {"type": "result", "is_main_result": is_main_result}
    extra: Dict[str, Any] = {}
    for mime, value in data.items():
        key = MIME_KEYS.get(mime)
        if key is None:
            extra[mime] = value  # any other MIME goes to `extra` (§4.2)
        elif key == "text" and isinstance(value, str):
            line["text"] = strip_quotes(value)
        else:
            line[key] = value
    if extra:
        line["extra"] = extra
    return line
