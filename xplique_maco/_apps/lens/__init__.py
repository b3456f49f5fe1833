"""The lens: the concepts of each class, found in the user's images by CRAFT's recipe, shown by MACO,
in a page people browse."""
