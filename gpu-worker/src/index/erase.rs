//! Dropping erased faces from the index (`DELETE /images/{hash}` appends their log ids to the
//! face log as one erasure entry). On the CPU layout the rows are removed and their memory
//! given back at once; on the device layout they are skipped by every search from then on and
//! their memory is held until the worker restarts (the chunks are not rewritten).

use std::collections::HashSet;

use facematch_core::store::{DESCRIPTOR_LEN, LogId};

use super::{FaceIndex, Storage};

impl FaceIndex {
    /// Forgets the faces logged under `ids` (ids not held are ignored).
    pub fn erase(&mut self, ids: &[LogId]) {
        let doomed: HashSet<usize> = ids
            .iter()
            .filter_map(|id| self.ids.binary_search(id).ok())
            .collect();
        if doomed.is_empty() {
            return;
        }
        match &mut self.storage {
            Storage::Host {
                exact,
                quant,
                outliers,
            } => {
                let keep: Vec<bool> = (0..self.ids.len()).map(|r| !doomed.contains(&r)).collect();
                let mut renumber = vec![usize::MAX; keep.len()];
                let mut next = 0;
                for (row, kept) in keep.iter().enumerate() {
                    if *kept {
                        renumber[row] = next;
                        next += 1;
                    }
                }
                compact(exact, &keep, DESCRIPTOR_LEN);
                compact(quant, &keep, DESCRIPTOR_LEN);
                compact(&mut self.owners, &keep, 1);
                compact(&mut self.ids, &keep, 1);
                *outliers = outliers
                    .iter()
                    .filter(|row| keep[**row])
                    .map(|row| renumber[*row])
                    .collect();
                exact.shrink_to_fit();
                quant.shrink_to_fit();
                self.owners.shrink_to_fit();
                self.ids.shrink_to_fit();
            }
            Storage::Device { .. } => {
                for row in doomed {
                    self.erased.insert(self.ids[row]);
                }
            }
        }
    }
}

/// Keeps the `width`-long rows of `values` whose `keep` is true, in order.
fn compact<T: Copy>(values: &mut Vec<T>, keep: &[bool], width: usize) {
    let mut write = 0;
    for (row, kept) in keep.iter().enumerate() {
        if *kept {
            values.copy_within(row * width..(row + 1) * width, write * width);
            write += 1;
        }
    }
    values.truncate(write * width);
}
