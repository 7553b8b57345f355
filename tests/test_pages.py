"""synthaug.pages: the shared page look and what a page calls a dataset."""

from __future__ import annotations

from pathlib import Path

import pytest

from synthaug.generate import generate_dataset
from synthaug.pages import dataset_title, environment, stylesheet


def test_a_page_extends_the_base_and_inlines_the_stylesheet() -> None:
    template = environment("synthaug.report").from_string(
        '{% extends "base.html.j2" %}{% block title %}{{ name }}{% endblock %}{% block content %}<h1>{{ name }}</h1>'
        "{% endblock %}")
    page = template.render(name="<b>x</b>")
    assert stylesheet() in page and ".scroll { overflow-x: auto; }" in stylesheet()
    assert "<title>&lt;b&gt;x&lt;/b&gt;</title>" in page and "<h1>&lt;b&gt;x&lt;/b&gt;</h1>" in page


@pytest.mark.slow  # loads the shipped ddpm generator
def test_titles_name_the_data_not_a_cache_folder(tmp_path: Path) -> None:
    assert dataset_title("fashion-mnist:train[50000:50800]") == "fashion-mnist:train[50000:50800]"
    plain = tmp_path / "my-images"
    plain.mkdir()
    assert dataset_title(str(plain)) == "my-images"
    cache = tmp_path / ("9f28c2231d2c9581d6c15db510d9ac18d7656c76f982164378e954c57fe40c2d")
    generate_dataset(cache, ["T-shirt/top", "Trouser"], 1, backend="ddpm", params={"steps": 2})
    title = dataset_title(str(cache))
    assert title.startswith("ddpm") and title.endswith("images") and cache.name[:16] not in title
    named = tmp_path / "ddpm-shirts"
    cache.rename(named)
    assert dataset_title(str(named)).startswith("ddpm-shirts (ddpm")
