"""`scrape.source=json`: WikiArt's JSON endpoints, served by the local server with the fields public WikiArt
retrievers read (see shared/reference/wikiart_endpoints.md), against the same scraper as the HTML pages."""

from __future__ import annotations

import hashlib
import json
import zlib
from datetime import datetime, timezone

import pytest
from test_scrape import FakeWikiArt, Reply, add_artist, index_page, jpeg, scrape_cfg

from data_modules.files import read_csv, sha256_file
from data_modules.scrape import scrape

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
ROW_FIELDS = ("artist", "title", "year", "movement", "source_url", "license", "sha256")


@pytest.fixture
def site():
    server = FakeWikiArt()
    yield server
    server.close()


def as_json(data) -> Reply:
    return Reply(body=json.dumps(data).encode(), content_type="application/json; charset=utf-8")


def dotnet_date(year: int) -> str:
    return f"/Date({int((datetime(year, 3, 1, tzinfo=timezone.utc) - EPOCH).total_seconds() * 1000)})/"


def artist_json(slug: str, name: str, born: int, died: int | None, as_string: bool = True) -> dict:
    """An artist as the artist lists give one (dates as text and as .NET dates, or only the latter)."""
    item = {"contentId": zlib.crc32(slug.encode()) % 10**6, "artistName": name, "url": slug, "artistUrl": f"/en/{slug}",
            "lastNameFirst": ", ".join(reversed(name.split(" ", 1))), "birthDay": dotnet_date(born),
            "deathDay": dotnet_date(died) if died else None, "image": f"/images/{slug}.jpg!Portrait.jpg",
            "wikipediaUrl": f"https://en.wikipedia.org/wiki/{name.replace(' ', '_')}"}
    if as_string:
        item |= {"birthDayAsString": f"March 1, {born}", "deathDayAsString": f"March 1, {died}" if died else ""}
    return item


def painting_json(content_id: str, title: str, artist: str, image: str | None, year: int | None = 1910) -> dict:
    """A painting as PaintingsByArtist lists it (the image as the `!Large.jpg` rendition)."""
    return {"contentId": content_id, "title": title, "image": image and image + "!Large.jpg",
            "completitionYear": year, "yearAsString": str(year) if year else None, "width": 800, "height": 600,
            "artistName": artist}


def details_json(listed: dict, artist_slug: str, style: str | None = "Expressionism") -> dict:
    """A painting's ImageJson details: the list's fields and more."""
    return listed | {"style": style, "genre": "portrait", "artistUrl": artist_slug,
                     "url": listed["title"].lower().replace(" ", "-"), "tags": "", "material": "oil, canvas",
                     "technique": None, "location": None, "period": None, "serie": None, "galleryName": "A Museum",
                     "description": "", "sizeX": 50.0, "sizeY": 60.0}


def add_json_artist(site: FakeWikiArt, slug: str, works: list[tuple[dict, dict | Reply | None]]) -> None:
    """PaintingsByArtist of `slug` and each painting's details (None: the details are not served)."""
    site.add(f"/en/App/Painting/PaintingsByArtist?artistUrl={slug}&json=2", as_json([w for w, _ in works]))
    for listed, details in works:
        if details is not None and "contentId" in listed:
            reply = details if isinstance(details, Reply) else as_json(details)
            site.add(f"/en/App/Painting/ImageJson/{listed['contentId']}", reply)


def add_letter(site: FakeWikiArt, letter: str, *pages: list) -> None:
    for n, artists in enumerate(pages, start=1):
        site.add(f"/en/alphabet/{letter}/?json=3&layout=new&page={n}", as_json({"Artists": artists}))


def test_json_and_html_sources_scrape_the_same_paintings(site, museum_paintings, tmp_path):
    jaw, kan = "alexej-von-jawlensky", "wassily-kandinsky"
    works = {jaw: [("1", "Head", "/img/head.jpg"), ("2", "Variation", "/img/variation.jpg")],
             kan: [("3", "Composition", "/img/composition.jpg")]}
    names = {jaw: "Alexej von Jawlensky", kan: "Wassily Kandinsky"}
    for painting, (_, _, image) in zip(museum_paintings, [w for ws in works.values() for w in ws]):
        site.add(image, jpeg(painting))
    # the HTML pages
    site.add("/en/Alphabet/a/text-list", Reply(body=index_page([(f"/en/{jaw}", names[jaw], "1864 - 1941")])))
    site.add("/en/Alphabet/w/text-list", Reply(body=index_page([(f"/en/{kan}", names[kan], "1866 - 1944")])))
    for slug, listed in works.items():
        add_artist(site, f"/en/{slug}", names[slug], [(t.lower(), t, image + "!Large.jpg") for _, t, image in listed])
    # the same as JSON (Kandinsky's dates only as .NET dates)
    add_letter(site, "a", [artist_json(jaw, names[jaw], 1864, 1941)], [])
    add_letter(site, "w", [artist_json(kan, names[kan], 1866, 1944, as_string=False)], [])
    site.add("/en/App/Artist/AlphabetJson?v=new&inPublicDomain=true",
             as_json([artist_json(jaw, names[jaw], 1864, 1941), artist_json(kan, names[kan], 1866, 1944)]))
    for slug, listed in works.items():
        items = [painting_json(cid, title, names[slug], image) for cid, title, image in listed]
        add_json_artist(site, slug, [(item, details_json(item, slug)) for item in items])

    rows = {}
    for source in ("html", "json"):
        summary = scrape(**scrape_cfg(site.url, tmp_path / source, "scrape.letters=aw", f"scrape.source={source}"))
        assert (summary.artists_kept, summary.found, summary.downloaded, summary.failed) == (2, 3, 3, 0), source
        manifest = read_csv(tmp_path / source / "paintings" / "manifest.csv")
        rows[source] = sorted(tuple(row[f] for f in ROW_FIELDS) for row in manifest)
        for row in manifest:
            assert sha256_file(tmp_path / source / "paintings" / "images" / row["file"]) == row["sha256"]
    assert rows["json"] == rows["html"]
    assert {r[0] for r in rows["json"]} == set(names.values()) and {r[5] for r in rows["json"]} == {"Public domain"}
    assert {r[4] for r in rows["json"]} == {site.url + image for ws in works.values() for _, _, image in ws}
    assert not any(h.path.endswith("!Large.jpg") for h in site.hits)


def test_json_source_pages_missing_fields_and_public_domain(site, museum_paintings, tmp_path):
    jaw, bela = "alexej-von-jawlensky", "bela-kadar"
    add_letter(site, "a",
               [artist_json(jaw, "Alexej von Jawlensky", 1864, 1941), artist_json("albrecht", "Albrecht", 1480, 1538)],
               ["not an artist", {"artistName": "No Page"}, {"url": "no-dates", "artistName": "No Dates"},
                artist_json("anna-alive", "Anna Alive", 1950, None),
                artist_json("arno-later", "Arno Later", 1890, 1945)],
               [])
    kadar = [artist_json(bela, "Béla Kádár", 1877, 1945)]
    add_letter(site, "b", kadar, kadar)  # a server that ignores `page`: the repeat ends the index
    add_letter(site, "c", [])
    site.add("/en/alphabet/d/?json=3&layout=new&page=1", as_json({"Painters": []}))
    site.add("/en/alphabet/e/?json=3&layout=new&page=1", Reply(body=b"<html>we moved</html>"))
    site.add("/en/App/Artist/AlphabetJson?v=new&inPublicDomain=true", as_json(
        [artist_json(s, s, 1864, 1941) for s in (jaw, "albrecht", bela, "anna-alive")]))  # not Arno Later

    name = "Alexej von Jawlensky"
    head = painting_json("10", "Head", name, "/img/head.jpg")
    academic = painting_json("11", "Academic Study", name, "/img/academic.jpg")
    no_style = painting_json("12", "No Style", name, "/img/no-style.jpg")
    no_image = painting_json("13", "No Image", name, None)
    listed_image = painting_json("14", "Listed Image", name, "/img/listed.jpg")
    bad = painting_json("15", "Bad Details", name, "/img/bad.jpg")
    year_only = painting_json("16", "Year Only", name, "/img/year-only.jpg") | {"yearAsString": None}
    add_json_artist(site, jaw, [
        (head, details_json(head, jaw)),
        (academic, details_json(academic, jaw, style="Academicism")),  # not a modern style: left out
        (no_style, details_json(no_style, jaw, style=None)),
        (no_image, details_json(no_image, jaw)),
        (listed_image, details_json(listed_image, jaw) | {"image": None}),  # the list's image is used
        (bad, Reply(body=b"<html>oops</html>")),
        ({"title": "No Content Id", "image": "/img/x.jpg"}, None),  # not a painting entry: skipped
        (year_only, details_json(year_only, jaw)),
    ])
    site.add(f"/en/App/Painting/PaintingsByArtist?artistUrl={bela}&json=2", as_json({"Paintings": "moved"}))
    for painting, path in zip(museum_paintings, ["head", "academic", "no-style", "listed", "bad", "year-only"]):
        site.add(f"/img/{path}.jpg", jpeg(painting))

    summary = scrape(**scrape_cfg(site.url, tmp_path, "scrape.letters=abcde", "scrape.source=json"))

    assert (summary.artists_found, summary.artists_kept, summary.found, summary.kept) == (5, 2, 7, 3)
    assert (summary.downloaded, summary.failed, summary.disallowed) == (3, 7, 0)
    app = site.url + "/en/App/Painting"
    reasons = dict(summary.failures)
    assert "lists no artists" in reasons[site.url + "/en/alphabet/c/?json=3&layout=new&page=1"]
    assert "not an artist index" in reasons[site.url + "/en/alphabet/d/?json=3&layout=new&page=1"]
    assert "not JSON" in reasons[site.url + "/en/alphabet/e/?json=3&layout=new&page=1"]
    assert "show no style" in reasons[f"{app}/ImageJson/12"] and "has no image" in reasons[f"{app}/ImageJson/13"]
    assert "not JSON" in reasons[f"{app}/ImageJson/15"]
    assert "not a list of paintings" in reasons[f"{app}/PaintingsByArtist?artistUrl={bela}&json=2"]
    assert len(reasons) == 7

    assert len(site.hits_of("/en/alphabet/a/?json=3&layout=new&page=3")) == 1  # the empty page ends the index
    assert not site.hits_of("/en/alphabet/b/?json=3&layout=new&page=3")
    assert len(site.hits_of("/en/App/Artist/AlphabetJson?v=new&inPublicDomain=true")) == 1  # once per run
    asked = {h.path for h in site.hits}
    for slug in ("albrecht", "anna-alive", "arno-later"):  # too early, living, not in the public domain
        assert f"/en/App/Painting/PaintingsByArtist?artistUrl={slug}&json=2" not in asked
    assert "/img/academic.jpg" not in asked and not any(p.endswith("!Large.jpg") for p in asked)

    rows = {row["title"]: row for row in read_csv(tmp_path / "paintings" / "manifest.csv")}
    assert set(rows) == {"Head", "Listed Image", "Year Only"}
    assert rows["Head"]["page_url"] == f"{app}/ImageJson/10" and rows["Head"]["artist"] == name
    assert rows["Listed Image"]["source_url"] == site.url + "/img/listed.jpg"
    assert (rows["Year Only"]["year"], rows["Head"]["movement"], rows["Head"]["license"]) == (
        "1910", "Expressionism", "Public domain")
    assert rows["Head"]["sha256"] == hashlib.sha256(museum_paintings[0].read_bytes()).hexdigest()

    again = scrape(**scrape_cfg(site.url, tmp_path, "scrape.letters=abcde", "scrape.source=json"))
    assert (again.kept, again.downloaded, again.skipped) == (3, 0, 3)
