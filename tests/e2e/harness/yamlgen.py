"""A minimal block-style YAML emitter for test configs (dicts, lists, str, int, float, bool, None).

Strings are always double-quoted with JSON escaping, which is valid YAML, so no value can be
misread as another type. Keeping this tiny avoids a PyYAML dependency.
"""
import json


def _scalar(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(str(v))


def _emit(value, indent, out):
    pad = "  " * indent
    if isinstance(value, dict):
        if not value:
            out.append(pad + "{}")
        for k, v in value.items():
            if isinstance(v, dict) and v:
                out.append(f"{pad}{k}:")
                _emit(v, indent + 1, out)
            elif isinstance(v, list) and v:
                out.append(f"{pad}{k}:")
                _emit(v, indent + 1, out)
            elif isinstance(v, (dict, list)):
                out.append(f"{pad}{k}: {'{}' if isinstance(v, dict) else '[]'}")
            else:
                out.append(f"{pad}{k}: {_scalar(v)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, (dict, list)) and item:
                sub = []
                _emit(item, indent + 1, sub)
                first = sub[0].lstrip()
                out.append(f"{pad}- {first}")
                out.extend(sub[1:])
            elif isinstance(item, (dict, list)):
                out.append(f"{pad}- {'{}' if isinstance(item, dict) else '[]'}")
            else:
                out.append(f"{pad}- {_scalar(item)}")
    else:
        out.append(pad + _scalar(value))


def dump(value) -> str:
    out = []
    _emit(value, 0, out)
    return "\n".join(out) + "\n"
