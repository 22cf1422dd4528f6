"""Call transcripts: one row of facts per transcribed call and its timed, speaker-labelled segments.

A transcript is replaced whole when a call is transcribed again (a retry, a better model), in
the same transaction that puts its text into the interaction's body and the search index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Float, ForeignKey, String, Text, delete, insert, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from storage.base import Base, utcnow


class Transcript(Base):
    """How a call was transcribed: language, model, and how long it took."""

    __tablename__ = "transcripts"

    interaction_id: Mapped[int] = mapped_column(
        ForeignKey("interactions.id", ondelete="CASCADE"), primary_key=True
    )
    language: Mapped[str] = mapped_column(String(16))
    model: Mapped[str] = mapped_column(String(300))
    model_version: Mapped[str] = mapped_column(String(300))
    audio_seconds: Mapped[float] = mapped_column(Float)
    processing_seconds: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TranscriptSegment(Base):
    """A stretch of speech: when, who, what, and how sure the model was (mean log-probability)."""

    __tablename__ = "transcript_segments"

    id: Mapped[int] = mapped_column(primary_key=True)
    interaction_id: Mapped[int] = mapped_column(ForeignKey("interactions.id", ondelete="CASCADE"), index=True)
    start: Mapped[float] = mapped_column(Float)
    end: Mapped[float] = mapped_column(Float)
    speaker: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    avg_logprob: Mapped[float] = mapped_column(Float)


@dataclass(frozen=True)
class SegmentRow:
    """One segment to store."""

    start: float
    end: float
    speaker: str
    text: str
    avg_logprob: float


@dataclass(frozen=True)
class TranscriptRow:
    """A whole transcript to store."""

    language: str
    model: str
    model_version: str
    audio_seconds: float
    processing_seconds: float
    segments: Sequence[SegmentRow]


def replace_transcript(session: Session, interaction_id: int, transcript: TranscriptRow) -> None:
    """Store a call's transcript, replacing any earlier one."""
    session.execute(delete(TranscriptSegment).where(TranscriptSegment.interaction_id == interaction_id))
    session.execute(delete(Transcript).where(Transcript.interaction_id == interaction_id))
    session.execute(
        insert(Transcript).values(
            interaction_id=interaction_id,
            language=transcript.language,
            model=transcript.model,
            model_version=transcript.model_version,
            audio_seconds=transcript.audio_seconds,
            processing_seconds=transcript.processing_seconds,
            created_at=utcnow(),
        )
    )
    if transcript.segments:
        session.execute(
            insert(TranscriptSegment),
            [
                {
                    "interaction_id": interaction_id,
                    "start": s.start,
                    "end": s.end,
                    "speaker": s.speaker,
                    "text": s.text,
                    "avg_logprob": s.avg_logprob,
                }
                for s in transcript.segments
            ],
        )


def transcript_of(session: Session, interaction_id: int) -> tuple[Transcript | None, list[TranscriptSegment]]:
    """A call's transcript facts and its segments in time order (None, [] if not transcribed)."""
    facts = session.get(Transcript, interaction_id)
    segments = session.scalars(
        select(TranscriptSegment)
        .where(TranscriptSegment.interaction_id == interaction_id)
        .order_by(TranscriptSegment.start, TranscriptSegment.id)
    ).all()
    return facts, list(segments)
