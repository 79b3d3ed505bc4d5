"""Reports over MI Datasets: the paper's findings (JSON + Markdown) and the robustness summary."""
