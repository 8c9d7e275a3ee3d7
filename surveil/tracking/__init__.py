"""Per-camera tracking: detections of one object in successive keyframes become one track.

Why not Ultralytics' ByteTrack/BoT-SORT or supervision's ByteTrack: they are built for
every frame of a video (a Kalman filter stepped once per frame, IoU-first matching, track
buffers counted in frames). Surveil's keyframes come at irregular times, from every frame
to a 5 s heartbeat, and the appearance embedding of every detection is already computed.
So association here is a cost over *appearance* (cosine of re-id / CNN embeddings against
the track's pooled and last vectors) blended with *motion* (IoU against a constant-velocity
prediction) whose weight decays with the time since the track was last seen, behind a
centre-distance gate that widens with that time; scipy's `linear_sum_assignment` solves
the assignment. Pure numpy/scipy, deterministic, and rebuildable from stored members
(`TrackState.from_members`) so an interrupted ingest resumes the same tracks.
"""

from surveil.tracking.quality import crop_quality
from surveil.tracking.state import Member, TrackState
from surveil.tracking.tracker import CameraTracker

__all__ = ["CameraTracker", "Member", "TrackState", "crop_quality"]
