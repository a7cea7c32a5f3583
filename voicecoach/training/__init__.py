"""Training the keyword spotter head, one module per stage.

sources, clips, synthesis, augmentation, plan, features, train, evaluate, model_card.

Needs the `train` extra (torch, audiomentations, tqdm); nothing here is imported at run time.
"""
