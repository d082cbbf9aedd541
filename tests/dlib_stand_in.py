"""Pieces of a stand-in dlib for the tests that run without it (CI has no dlib)."""


class FakeRect:
    """dlib.rectangle's interface: left(), top(), right(), bottom()."""

    def __init__(self, left, top, right, bottom):
        self.box = (left, top, right, bottom)

    def left(self):
        return self.box[0]

    def top(self):
        return self.box[1]

    def right(self):
        return self.box[2]

    def bottom(self):
        return self.box[3]
