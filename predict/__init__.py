"""Facial-expression recognition of the faces in photos, videos and face crops.

From Python (after make install-predict, from any folder):

    from predict import Recognizer, track
    recognizer = Recognizer()                       # the shipped model, through OpenCV DNN
    faces = recognizer.predict("photo.jpg")         # or an array: predict(array, color="rgb")
    faces[0]["label"], faces[0]["probabilities"]    # the same fields as the CLI's JSON
    for frame in track("clip.mp4", recognizer):     # or a camera index, or an rtsp:// URL
        frame["time_s"], [(f["track"], f["label"]) for f in frame["faces"]]

A file that cannot be read raises InputError; its message names the file.

From the shell: python -m predict --help.
"""

from predict.media import InputError
from predict.recognizer import DEFAULT_MODEL, Recognizer
from predict.video import track

__all__ = ["DEFAULT_MODEL", "InputError", "Recognizer", "track"]
