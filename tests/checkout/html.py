"""Strict HTML parsing for tests: a parse error fails the test instead of being repaired."""

from xml.etree.ElementTree import Element

import html5lib

_parser = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False)


def parse_fragment(html: str) -> Element:
    return _parser.parseFragment(html)


def parse_page(html: str) -> Element:
    return _parser.parse(html)


def by_id(root: Element, element_id: str) -> list[Element]:
    return [element for element in root.iter() if element.get("id") == element_id]


def text_of(element: Element) -> str:
    return " ".join("".join(element.itertext()).split())
