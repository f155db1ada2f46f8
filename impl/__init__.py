"""impl: a compact implementation of what fast.ai's Lesson 6 teaches (torch, torchvision, numpy, pandas, PIL).

One module per lesson topic; the executable spec in spec/ checks each against the lesson's claims.
"""
