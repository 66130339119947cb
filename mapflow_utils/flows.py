"""The flows the book blocks, by name: one constant per flow, the names every sweep, claim, table and figure uses
(``source→target``: the target's queries may not attend to the source's keys; cross-frame: each frame's tokens may
not attend to earlier frames). What each flow blocks, as specs, is :data:`mapflow_utils.experiments.FLOWS`."""

CROSS_FRAME = "cross-frame"
VIDEO_QUESTION = "video→question"
VIDEO_LAST = "video→last"
QUESTION_LAST = "question→last"
LAST_LAST = "last→last"
NON_OPTION_LAST = "non-option question→last"
TRUE_OPTION_LAST = "true option→last"
FALSE_OPTIONS_LAST = "false options→last"
VIDEO_NON_OPTION = "video→non-option question"
NON_OPTION_TRUE_OPTION = "non-option question→true option"
VIDEO_TRUE_OPTION = "video→true option"
