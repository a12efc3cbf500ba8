"""Facial-expression recognition of the faces in photos, videos and face crops.

From Python (after make install-predict, from any folder):

    from predict import Recognizer
    recognizer = Recognizer()                       # the shipped model, through OpenCV DNN
    faces = recognizer.predict("photo.jpg")         # or an array: predict(array, color="rgb")
    faces[0]["label"], faces[0]["probabilities"]    # the same fields as the CLI's JSON

From the shell: python -m predict --help.
"""

from predict.recognizer import DEFAULT_MODEL, Recognizer

__all__ = ["DEFAULT_MODEL", "Recognizer"]
