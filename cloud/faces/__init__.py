"""Faces: the enrolled gallery index, matching, enrolment and enrolled thumbnails."""
