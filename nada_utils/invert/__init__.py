"""Real images into a generator's latent space: fitting a latent (`projection`), the e4e encoder
(`e4e`), the whole inversion with alignment and adapted renders (`inversion`), and text-guided latent
edits (`latent_edit`).

May import: helpers, weights, models, adapt
"""
