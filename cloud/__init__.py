"""The cloud CDP: members and their enrolled faces, arrivals matched to members, guide cards.

Talks to stores only through ``protocol`` (MQTT topics and messages); never imports edge or kiosk.
"""
