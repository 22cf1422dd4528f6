// Call transcripts: clicking a segment plays the recording from there; the segment being
// played is highlighted; a link to #t=SECONDS (a marketing-ban quote) starts there.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const player = document.getElementById("player");
  if (!player) return;
  const segments = Array.from(document.querySelectorAll(".transcript .segment"));
  const playFrom = (seconds) => {
    player.currentTime = seconds;
    player.play().catch(() => {});
  };
  segments.forEach((segment) => {
    const start = parseFloat(segment.dataset.start);
    segment.addEventListener("click", () => playFrom(start));
    segment.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        playFrom(start);
      }
    });
  });
  document.querySelectorAll("[data-seek]").forEach((link) => {
    link.addEventListener("click", (event) => {
      event.preventDefault();
      playFrom(parseFloat(link.dataset.seek));
    });
  });
  player.addEventListener("timeupdate", () => {
    const now = player.currentTime;
    segments.forEach((segment) => {
      const playing = now >= parseFloat(segment.dataset.start) && now < parseFloat(segment.dataset.end);
      segment.classList.toggle("playing", playing);
    });
  });
  const match = /^#t=([0-9.]+)$/.exec(window.location.hash);
  if (match) {
    player.addEventListener("loadedmetadata", () => { player.currentTime = parseFloat(match[1]); }, { once: true });
  }
});
