"""The TVBench loader: layout, frame sampling, both decoders, and every kind of bad input."""

import json
import shutil

import numpy as np
import pytest

from mapflow_utils import paths
from mapflow_utils.data import (PAPER_TASKS, DataError, VideoError, load_tvbench, read_frames, sample_indices)


def copy_root(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_shipped_split_loads_with_all_tasks():
    import json

    meta = json.loads((paths.SYNTHETIC / "synth.json").read_text())  # what the generator wrote, not retyped
    ds = load_tvbench(paths.SYNTHETIC)
    counts = {t: len(v) for t, v in ds.by_task().items()}
    assert counts == {t: meta["n_per_task"] for t in PAPER_TASKS}
    s = ds[0]
    assert s.answer in s.candidates and s.candidates[s.answer_index] == s.answer
    side = meta["config"]["size"]
    assert s.frames().shape == (8, side, side, 3) and s.frames().dtype == np.uint8


def test_subset_is_seeded_and_in_file_order(synth_root):
    a = load_tvbench(synth_root, tasks=["object_count"], n_per_task=2, seed=1)
    b = load_tvbench(synth_root, tasks=["object_count"], n_per_task=2, seed=1)
    assert [s.index for s in a] == [s.index for s in b]
    assert [s.index for s in a] == sorted(s.index for s in a)
    assert len(a) == 2


def test_sample_indices_are_segment_midpoints():
    assert sample_indices(16, 8).tolist() == [1, 3, 5, 7, 9, 11, 13, 15]
    # start/end in seconds at 8 fps: frames 8..23
    assert sample_indices(32, 8, fps=8, start=1.0, end=3.0).tolist() == [9, 11, 13, 15, 17, 19, 21, 23]
    assert sample_indices(10, 4).tolist() == [1, 3, 6, 8]
    # a window beyond the video is an error naming the window and the video's length, never the whole video
    with pytest.raises(VideoError, match=r"start=5.0 s, end=6.0 s holds no frame of a video of 16 frames at 8 fps"):
        sample_indices(16, 8, fps=8, start=5.0, end=6.0)
    # fewer frames than asked would repeat frames
    with pytest.raises(VideoError, match="1 frame.* fewer than the 8 frames asked"):
        sample_indices(1, 8)


def test_start_end_are_honoured(synth_root):
    """Synthetic Action Sequence clips carry unrelated footage outside start/end; the loader must skip it."""
    s = load_tvbench(synth_root, tasks=["action_sequence"])[0]
    assert s.start is not None and s.end is not None
    inside = s.frames()
    assert inside[0].max() == 0 and inside[-1].max() == 0  # the clip's own fade-in / fade-out
    whole = read_frames(s.video_path, 8)
    assert whole[0].max() > 0  # without start/end the first sampled frame is the unrelated footage


def test_decord_and_pyav_decode_the_same_frames(synth_root):
    s = load_tvbench(synth_root, tasks=["moving_direction"])[0]
    a = read_frames(s.video_path, 8, backend="decord")
    b = read_frames(s.video_path, 8, backend="pyav")
    assert a.shape == b.shape == (8, 64, 64, 3)
    assert np.array_equal(a, b)


# ------------------------------------------------------------------------------------------ bad input


def _json(root, task):
    return root / "json" / f"{task}.json"


def _edit(root, task, fn):
    path = _json(root, task)
    recs = json.loads(path.read_text())
    fn(recs)
    path.write_text(json.dumps(recs))


def test_missing_root_names_the_fix(tmp_path):
    with pytest.raises(DataError, match="has no json/ folder.*mapflow data synth"):
        load_tvbench(tmp_path)


def test_unknown_task(synth_root):
    with pytest.raises(DataError, match=r"Unknown task 'action_teleport'.*Available here: action_antonym"):
        load_tvbench(synth_root, tasks=["action_teleport"])


def test_empty_task(synth_root, tmp_path):
    root = copy_root(synth_root, tmp_path / "r")
    _json(root, "scene_transition").write_text("[]")
    with pytest.raises(DataError, match=r"scene_transition.json has no records"):
        load_tvbench(root)
    # empty tasks raise even when skipping bad records: a whole task missing is never silent
    with pytest.raises(DataError, match="no records"):
        load_tvbench(root, on_error="skip")


def test_invalid_json(synth_root, tmp_path):
    root = copy_root(synth_root, tmp_path / "r")
    _json(root, "object_count").write_text('[{"video": "a.mp4",')
    with pytest.raises(DataError, match=r"object_count.json is not valid JSON \(.*line 1"):
        load_tvbench(root, tasks=["object_count"])


@pytest.mark.parametrize("mutate, message", [
    (lambda r: r.pop("answer"), r"record 1: missing field 'answer'"),
    (lambda r: r.update(candidates="up, down"), r"record 1: field 'candidates' must be list, got str"),
    (lambda r: r.update(question=3), r"record 1: field 'question' must be str, got int"),
    (lambda r: r.update(answer="sideways"), r"record 1: answer 'sideways' is not among candidates"),
    (lambda r: r.update(candidates=["up"], answer="up"), r"record 1: 'candidates' must list at least two"),
    (lambda r: r.update(start="soon"), r"record 1: 'start' must be a finite number of seconds"),
    (lambda r: r.update(start=float("nan")), r"record 1: 'start' must be a finite number of seconds >= 0, got nan"),
    (lambda r: r.update(end=-2), r"record 1: 'end' must be a finite number of seconds >= 0"),
    (lambda r: r.update(video="../action_antonym/action_antonym_0000.mp4"), r"record 1: 'video' must be a file name "
     r"inside .*video/moving_direction.*'\.\.' are refused.*allow_outside=True"),
    (lambda r: r.update(video="/etc/hostname"), r"record 1: 'video' must be a file name inside"),
])
def test_malformed_records_raise_then_skip(synth_root, tmp_path, mutate, message):
    root = copy_root(synth_root, tmp_path / "r")
    _edit(root, "moving_direction", lambda recs: mutate(recs[1]))
    with pytest.raises(DataError, match=message):
        load_tvbench(root, tasks=["moving_direction"])
    with pytest.warns(UserWarning, match="skipped 1 bad record"):
        ds = load_tvbench(root, tasks=["moving_direction"], on_error="skip")
    assert [s.index for s in ds] == [0, 2, 3]
    assert len(ds.problems) == 1 and "record 1" in ds.problems[0]
    assert "skipped 1" in ds.summary()


def test_not_utf8_names_the_file_and_skip_leaves_the_task_out(synth_root, tmp_path):
    root = copy_root(synth_root, tmp_path / "r")
    path = _json(root, "object_count")
    path.write_bytes(path.read_bytes().replace(b"How many", "Wie viele \u00e4".encode("latin-1")))
    with pytest.raises(DataError, match=r"object_count.json is not UTF-8 text \(byte 0xe4 at offset \d+\)\. Re-save"):
        load_tvbench(root, tasks=["object_count", "scene_transition"])
    with pytest.warns(UserWarning, match="skipped 1"):
        ds = load_tvbench(root, tasks=["object_count", "scene_transition"], on_error="skip")
    assert set(ds.by_task()) == {"scene_transition"}
    assert "task object_count left out" in ds.problems[0] and "not UTF-8" in ds.problems[0]


def test_a_link_out_of_the_data_folder_is_refused(synth_root, tmp_path):
    root = copy_root(synth_root, tmp_path / "r")
    outside = tmp_path / "elsewhere.mp4"
    shutil.copy(root / "video" / "object_count" / "object_count_0001.mp4", outside)
    link = root / "video" / "object_count" / "object_count_0001.mp4"
    link.unlink()
    link.symlink_to(outside)
    with pytest.raises(DataError, match=r"record 1: video 'object_count_0001.mp4' resolves outside.*allow_outside"):
        load_tvbench(root, tasks=["object_count"])
    ds = load_tvbench(root, tasks=["object_count"], allow_outside=True)  # a researcher's videos on another disk
    assert ds[1].frames().shape[0] == 8


def test_a_window_outside_the_clip_or_too_few_frames(synth_root, tmp_path):
    root = copy_root(synth_root, tmp_path / "r")
    _edit(root, "moving_direction", lambda recs: recs[2].update(start=30.0, end=31.0))
    ds = load_tvbench(root, tasks=["moving_direction"])  # existence only: loads
    with pytest.raises(VideoError, match=r"moving_direction_0002.mp4: the window start=30.0 s, end=31.0 s holds no "
                                         r"frame of a video of 16 frames"):
        ds[2].frames()
    with pytest.raises(VideoError, match="record 2: .*holds no frame"):
        load_tvbench(root, tasks=["moving_direction"], verify_videos=True)
    # a one-frame video: no longer eight copies of one frame
    from mapflow_utils.synthetic import generate_clip, write_mp4

    write_mp4(root / "video" / "object_count" / "object_count_0003.mp4", generate_clip("object_count", 0, 0).frames[5:6], 8)
    with pytest.raises(VideoError, match=r"object_count_0003.mp4: 1 frame\(s\) in the window .* fewer than the 8"):
        load_tvbench(root, tasks=["object_count"])[3].frames()
    with pytest.warns(UserWarning):
        ok = load_tvbench(root, tasks=["object_count"], verify_videos=True, on_error="skip")
    assert [s.index for s in ok] == [0, 1, 2] and "fewer than the 8" in ok.problems[0]


def test_missing_video(synth_root, tmp_path):
    root = copy_root(synth_root, tmp_path / "r")
    (root / "video" / "object_count" / "object_count_0002.mp4").unlink()
    with pytest.raises(VideoError, match=r"record 2: video file .*object_count_0002.mp4 not found.*Extract"):
        load_tvbench(root, tasks=["object_count"])
    with pytest.warns(UserWarning):
        ds = load_tvbench(root, tasks=["object_count"], on_error="skip")
    assert [s.index for s in ds] == [0, 1, 3]


def test_missing_action_antonym_videos_point_to_ntu(synth_root, tmp_path):
    root = copy_root(synth_root, tmp_path / "r")
    shutil.rmtree(root / "video" / "action_antonym")
    with pytest.raises(VideoError, match="NTU ROSE"):
        load_tvbench(root, tasks=["action_antonym"])


@pytest.mark.parametrize("damage", ["garbage", "truncated", "truncated_faststart", "empty"])
def test_corrupt_videos(synth_root, tmp_path, damage):
    """decord raises RuntimeError for most bad files but DECORDError for a cut faststart mp4: both are caught."""
    root = copy_root(synth_root, tmp_path / "r")
    path = root / "video" / "scene_transition" / "scene_transition_0001.mp4"
    data = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"\x00not a video" * 50)
    elif damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "truncated_faststart":
        import av
        from mapflow_utils.synthetic import generate_clip
        clip = generate_clip("scene_transition", 0, 0)
        with av.open(str(path), "w", options={"movflags": "faststart"}) as c:
            st = c.add_stream("libx264", rate=8)
            st.width = st.height = 64
            for f in clip.frames:
                for p in st.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                    c.mux(p)
            for p in st.encode():
                c.mux(p)
        full = path.read_bytes()
        path.write_bytes(full[: int(len(full) * 0.6)])
    else:
        path.write_bytes(b"")
    ds = load_tvbench(root, tasks=["scene_transition"])  # existence only: loads
    bad = ds[1]
    with pytest.raises(VideoError, match=r"scene_transition_0001.mp4.*(corrupt|decode)"):
        bad.frames()
    with pytest.raises(VideoError, match=r"record 1: cannot decode video .*scene_transition_0001.mp4"):
        load_tvbench(root, tasks=["scene_transition"], verify_videos=True)
    with pytest.warns(UserWarning):
        ds = load_tvbench(root, tasks=["scene_transition"], verify_videos=True, on_error="skip")
    assert [s.index for s in ds] == [0, 2, 3]
    assert "scene_transition_0001.mp4" in ds.problems[0]


def test_pyav_backend_reports_corrupt_file(tmp_path):
    p = tmp_path / "bad.mp4"
    p.write_bytes(b"\x00" * 100)
    with pytest.raises(VideoError, match="bad.mp4"):
        read_frames(p, backend="pyav")
    with pytest.raises(VideoError, match="not found"):
        read_frames(tmp_path / "nope.mp4", backend="pyav")
