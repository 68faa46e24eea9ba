"""Annotated copies: colours at the box pixels, captions, saved files, never over an input."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from forensic_app.core.annotate import (
    BOX_COLORS,
    face_caption,
    face_color,
    render_annotated,
    save_annotated,
)
from forensic_app.core.atomic import ProtectedFileError
from forensic_app.core.results import Face


def faces() -> list[Face]:
    return [
        Face(box=[20, 40, 80, 110], score=0.9, gender="female", p_male=0.06),
        Face(box=[120, 40, 180, 110], score=0.8, gender="male", p_male=0.91),
        Face(box=[220, 40, 280, 110], score=0.7, gender="uncertain", p_male=0.55),
        Face(box=[20, 140, 80, 190], gender="male", p_male=None, manual_box=True),
    ]


def test_captions() -> None:
    f = faces()
    assert face_caption(f[0], 2) == "2 female 0.94"  # confidence in the shown label
    assert face_caption(f[1]) == "male 0.91"
    assert face_caption(f[2], 3) == "3 uncertain p(male) 0.55"  # no verdict, no confidence
    assert face_caption(f[3], 4) == "4 manual"
    drawn = Face(box=[0, 0, 1, 1], gender="female", p_male=0.2, manual_box=True)
    assert face_caption(drawn, 5) == "5 female 0.80 manual"  # model label on a hand-drawn box
    corrected = Face(
        box=[0, 0, 1, 1], gender="female", p_male=0.8, manual_label=True, model_gender="male"
    )
    # A hand-set label says "manual" and keeps the model's own answer beside it.
    assert face_caption(corrected, 1) == "1 female manual (model: male 0.80)"
    unsure = Face(
        box=[0, 0, 1, 1], gender="male", p_male=0.45, manual_label=True, model_gender="uncertain"
    )
    assert face_caption(unsure, 2) == "2 male manual (model: uncertain p(male) 0.45)"


def test_colours_are_defined_once_and_distinct() -> None:
    assert set(BOX_COLORS) == {"female", "male", "uncertain", "selected", "manual"}
    assert len(set(BOX_COLORS.values())) == len(BOX_COLORS)
    assert face_color(faces()[3]) == BOX_COLORS["manual"]


def test_render_draws_each_box_in_its_colour_on_a_copy() -> None:
    rgb = np.full((200, 300, 3), 40, np.uint8)
    original = rgb.copy()
    out = render_annotated(rgb, faces())
    np.testing.assert_array_equal(rgb, original)  # the input array is not drawn on
    assert out.shape == rgb.shape and out.dtype == np.uint8
    for face, key in zip(faces(), ["female", "male", "uncertain", "manual"], strict=True):
        x1, y1, x2, y2 = (int(v) for v in face.box)
        ymid = (y1 + y2) // 2
        # the left and right edges at mid-height carry the label colour exactly
        assert tuple(out[ymid, x1]) == BOX_COLORS[key], key
        assert tuple(out[ymid, x2]) == BOX_COLORS[key], key
        # the inside of the box is untouched
        assert tuple(out[ymid, (x1 + x2) // 2]) == (40, 40, 40)


def test_selected_face_is_outlined() -> None:
    rgb = np.zeros((200, 300, 3), np.uint8)
    out = render_annotated(rgb, faces(), selected=1)
    x1, y1, x2, y2 = (int(v) for v in faces()[1].box)
    ymid = (y1 + y2) // 2
    assert tuple(out[ymid, x1 - 3]) == BOX_COLORS["selected"]  # the outline outside the box
    assert tuple(out[ymid, x1]) == BOX_COLORS["male"]


def test_line_width_grows_with_image_size() -> None:
    def width(size: int) -> int:
        rgb = np.zeros((size, size, 3), np.uint8)
        f = Face(box=[size * 0.3, size * 0.3, size * 0.6, size * 0.6], gender="male", p_male=0.9)
        row = render_annotated(rgb, [f])[int(size * 0.45)]
        return int((row == BOX_COLORS["male"]).all(axis=1).sum())

    assert width(4000) >= 3 * width(400)


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".tif"])
def test_save_annotated_writes_decodable_file(tmp_path: Path, suffix: str) -> None:
    rgb = np.full((200, 300, 3), 40, np.uint8)
    out = save_annotated(rgb, faces(), tmp_path / f"out{suffix}")
    with Image.open(out) as im:
        assert im.size == (300, 200) and im.mode == "RGB"
        arr = np.asarray(im)
    tol = 40 if suffix == ".jpg" else 0
    assert np.abs(arr[75, 20].astype(int) - BOX_COLORS["female"]).max() <= tol
    assert [p.name for p in tmp_path.iterdir()] == [f"out{suffix}"]  # no temp file left


def test_save_refuses_to_overwrite_an_input(tmp_path: Path) -> None:
    src = tmp_path / "evidence.jpg"
    Image.new("RGB", (50, 40), (1, 2, 3)).save(src)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    rgb = np.zeros((40, 50, 3), np.uint8)
    with pytest.raises(ProtectedFileError, match="evidence"):
        save_annotated(rgb, [], src, protected=[src])
    alias = tmp_path / "sub" / ".." / "evidence.jpg"
    (tmp_path / "sub").mkdir()
    with pytest.raises(ProtectedFileError):
        save_annotated(rgb, [], alias, protected=[str(src)])
    assert hashlib.sha256(src.read_bytes()).hexdigest() == digest


def test_unknown_suffix_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot save"):
        save_annotated(np.zeros((4, 4, 3), np.uint8), [], tmp_path / "x.gif")
    assert not any(tmp_path.iterdir())


def test_captions_of_neighbouring_faces_do_not_overlap() -> None:
    from forensic_app.core.annotate import _overlap, place_captions

    # Five faces shoulder to shoulder, captions wider than the faces (a crowd photo).
    boxes = [(100 + 60 * k, 200, 150 + 60 * k, 260) for k in range(5)]
    sizes = [(150, 20)] * 5
    rects = place_captions(boxes, sizes, 800, 600)
    for a in range(5):
        assert 0 <= rects[a][0] and rects[a][2] <= 800 and 0 <= rects[a][1]
        for b in range(a + 1, 5):
            assert _overlap(rects[a], rects[b]) == 0, (a, b, rects)


def test_lone_caption_sits_above_its_box() -> None:
    from forensic_app.core.annotate import layout_labels, place_captions

    assert place_captions([(100, 100, 160, 170)], [(80, 20)], 640, 480) == [(100, 80, 180, 100)]
    assert layout_labels([(100, 100, 160, 170)], [(80, 20)], 640, 480)[0].leader is None


def _check_layout(boxes, spots, width: float, height: float) -> None:
    from forensic_app.core.annotate import _overlap

    for a, spot in enumerate(spots):
        r = spot.rect
        assert 0 <= r[0] and 0 <= r[1] and r[2] <= width and r[3] <= height, (a, r)
        for b, other in enumerate(spots[a + 1 :], start=a + 1):
            assert _overlap(r, other.rect) == 0, ("labels overlap", a, b, r, other.rect)
        for b, box in enumerate(boxes):
            assert _overlap(r, tuple(box)) == 0, ("label covers a face", a, b, r, box)


def test_crowded_labels_move_away_with_a_leader_line() -> None:
    from forensic_app.core.annotate import layout_labels

    # A tight grid of faces: there is no room beside the inner ones.
    boxes = [
        (100 + 45 * c, 100 + 45 * r, 140 + 45 * c, 140 + 45 * r) for r in range(4) for c in range(6)
    ]
    spots = layout_labels(boxes, [(110, 18)] * len(boxes), 800, 600)
    _check_layout(boxes, spots, 800, 600)
    moved = [s for s in spots if s.leader is not None]
    assert moved, "inner faces' labels must move away and get a leader line"
    for s in moved:
        (ax, ay), _ = s.leader
        r = s.rect
        assert r[0] <= ax <= r[2] and r[1] <= ay <= r[3]  # the line starts on its label


DENSE_PHOTOS = ("58_Hockey", "8_Election", "10_People_Marching")


@pytest.mark.parametrize("stem", DENSE_PHOTOS)
def test_no_label_overlaps_on_the_densest_dev_eval_photos(
    engine, dev_eval_dir: Path, stem: str
) -> None:
    from forensic_app.core.annotate import caption_layout
    from forensic_app.core.imaging import load_image

    matches = sorted((dev_eval_dir / "images").glob(f"*/{stem}*.jpg"))
    if not matches:
        pytest.skip(f"{stem} not in {dev_eval_dir}")
    image = load_image(matches[0])
    faces = engine.analyze_image(image).faces
    assert len(faces) >= 8  # a crowd
    _captions, spots, _style = caption_layout(image.width, image.height, faces)
    assert len(spots) == len(faces)
    _check_layout([f.box for f in faces], spots, image.width, image.height)
