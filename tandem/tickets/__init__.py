"""The ticket inbox: offline requests that staff claim, answer by e-mail and mark done."""
