"""The class names of the label sets, in the order of the class indices."""

FER2013 = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")
# FER+ (Barsoum et al., 2016) in the column order of fer2013new.csv; contempt is the eighth.
FERPLUS = ("Neutral", "Happy", "Surprise", "Sad", "Angry", "Disgust", "Fear", "Contempt")
