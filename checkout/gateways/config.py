"""Reading a provider's settings (contract section 6): each one it needs, named when it is missing
or its file cannot be read, so that a server refuses to start saying which."""

from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def required_settings(provider: str, *names: str) -> dict[str, str]:
    """The settings `names`, each set; ImproperlyConfigured names the first that is not."""
    values = {}
    for name in names:
        values[name] = str(getattr(settings, name, "") or "")
        if not values[name]:
            raise ImproperlyConfigured(f"{name} is not set ({provider} is a listed provider)")
    return values


def key_file[K](name: str, path: str, load: Callable[[str], K]) -> K:
    """What `load` makes of the PEM text in the file the setting `name` gives; ImproperlyConfigured
    names the setting when the file cannot be read or holds no such key."""
    try:
        return load(Path(path).read_text())
    except OSError as error:
        raise ImproperlyConfigured(f"{name}: cannot read {path}: {error.strerror}") from None
    except ValueError as error:
        raise ImproperlyConfigured(f"{name}: {error}") from None
